"""Phone numbers (DIDs) an account receives calls on, and where each one routes."""
from __future__ import annotations

from peewee import AutoField, BooleanField, CharField, ForeignKeyField, TextField

from .accounts import Account
from .agents import Agent
from .db import BaseModel
from .fields import UTCDateTimeField, utcnow
from .validators import check_media_target, check_webhook_url

# bot: stream to ``socket_url`` (a bot's ws(s) URL, or ``elevenlabs``/``vapi``, with or
# without ``&<id>``); agent: hand to ``agent``; webhook: ask ``webhook_url`` (the routing
# webhook, which answers with a socket URL or a hangup).
NUMBER_ROUTES = ("bot", "agent", "webhook")


class PhoneNumber(BaseModel):
    """One DID in E.164 form; a number belongs to at most one account."""

    id = AutoField()
    account = ForeignKeyField(Account, backref="phone_numbers")
    e164 = CharField(max_length=16, unique=True)  # E.164 allows at most 15 digits after "+"
    route = CharField(max_length=8)
    socket_url = TextField(null=True)
    agent = ForeignKeyField(Agent, backref="phone_numbers", null=True)
    webhook_url = TextField(null=True)
    # The provider agents a bare ``elevenlabs``/``vapi`` target talks to on this number's
    # calls, over the account's defaults (``gateway.calls.bot_target.provider_ref``).
    elevenlabs_agent_id = CharField(max_length=128, null=True)
    vapi_assistant_id = CharField(max_length=128, null=True)
    active = BooleanField(default=True)
    created_at = UTCDateTimeField(default=utcnow)

    class Meta:
        table_name = "phone_numbers"

    @property
    def target(self) -> str:
        """The route's target for display: a URL or an agent key."""
        if self.route == "agent":
            return self.agent.key if self.agent_id is not None else ""
        return (self.socket_url if self.route == "bot" else self.webhook_url) or ""


def clean_route(
    *, socket_url: str | None = None, agent: Agent | None = None, webhook_url: str | None = None
) -> dict:
    """The route fields for exactly one target; raise ``ValueError`` otherwise."""
    given = [name for name, value in
             (("socket_url", socket_url), ("agent", agent), ("webhook_url", webhook_url))
             if value is not None]
    if len(given) != 1:
        raise ValueError("a number routes to exactly one of: a socket URL, an agent, a webhook URL")
    if socket_url is not None:
        return {"route": "bot", "socket_url": check_media_target(socket_url, "socket URL"),
                "agent": None, "webhook_url": None}
    if agent is not None:
        return {"route": "agent", "socket_url": None, "agent": agent, "webhook_url": None}
    return {"route": "webhook", "socket_url": None, "agent": None,
            "webhook_url": check_webhook_url(webhook_url)}

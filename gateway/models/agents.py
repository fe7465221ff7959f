"""Agents: the bots a call is handed to, known to clients by an internal key.

Clients name an agent by its key (``akylai``), never by the provider's
identifier: which driver serves it, and with which reference, stays ours.

An agent built on the voice-agent admin surface also holds its conversation profile
(``profile``: prompt, first message, voice, LLM, temperature, dynamic-variable defaults;
``gateway.voice_agents.profile`` validates it) and the autonomous agent whose key created
it (``owner_agent``). The profile is one JSON document, not columns: it is ElevenLabs'
agent model, read whole into each conversation's overrides and never queried by field,
and providers add settings faster than migrations should follow.
"""
from __future__ import annotations

import re

from peewee import AutoField, BooleanField, CharField, ForeignKeyField, TextField

from gateway.domain import AGENT_DRIVERS

from .accounts import Account
from .db import BaseModel
from .fields import JSONTextField, UTCDateTimeField, utcnow
from .validators import check_slug, check_socket_url

AGENT_TYPES = ("inbound", "outbound")
# Drivers (``gateway.domain.Driver``): websocket: our bot protocol to ``driver_ref``, a
# ws(s):// URL; elevenlabs: ``driver_ref`` is the ElevenLabs agent id; vapi: the Vapi
# assistant id.

_LANGUAGE_RE = re.compile(r"[A-Za-z]{2,3}(-[A-Za-z0-9]{1,8})*\Z")  # BCP 47-ish: en, ru, hi-IN
_PROVIDER_ID_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}\Z")


class Agent(BaseModel):
    id = AutoField()
    # Indexed through the unique (account, key) index, which leads with it.
    account = ForeignKeyField(Account, backref="agents", index=False)
    key = CharField(max_length=64)  # internal key, unique per account, e.g. "akylai"
    name = CharField(max_length=255)
    language = CharField(max_length=16, default="en")
    agent_type = CharField(max_length=16, default="outbound")
    driver = CharField(max_length=16, default="websocket")
    driver_ref = TextField()  # socket URL, ElevenLabs agent id or Vapi assistant id
    active = BooleanField(default=True)
    created_at = UTCDateTimeField(default=utcnow)
    # The voice-agent admin surface: who created it (``ApiKey.owner_agent`` of the key),
    # and its conversation profile.
    owner_agent = ForeignKeyField("self", backref="created_agents", null=True, on_delete="SET NULL")
    profile = JSONTextField(default=dict)

    class Meta:
        table_name = "agents"
        indexes = ((("account", "key"), True),)

    @property
    def media_target(self) -> str:
        """The ``socket_url`` form the media bridge connects this agent's calls to:
        its WebSocket URL, or ``elevenlabs&<agent id>`` / ``vapi&<assistant id>``."""
        if self.driver == "websocket":
            return self.driver_ref
        return f"{self.driver}&{self.driver_ref}"


def clean_agent_fields(
    *, key: str, name: str, language: str, agent_type: str, driver: str, driver_ref: str | None
) -> dict:
    """Validate an agent's fields; return them cleaned, or raise ``ValueError``."""
    key = check_slug(key, "agent key")
    name = (name or "").strip()
    if not name:
        raise ValueError("the agent name is empty")
    if len(name) > 255:
        raise ValueError("the agent name is longer than 255 characters")
    if not isinstance(language, str) or not _LANGUAGE_RE.match(language) or len(language) > 16:
        raise ValueError(f"language {language!r} is invalid; expected a code such as en, ru or hi-IN")
    if agent_type not in AGENT_TYPES:
        raise ValueError(f"agent type {agent_type!r} is invalid; expected one of {', '.join(AGENT_TYPES)}")
    if driver not in AGENT_DRIVERS:
        raise ValueError(f"driver {driver!r} is invalid; expected one of {', '.join(AGENT_DRIVERS)}")
    if driver_ref is None or not driver_ref.strip():
        what = {"websocket": "a ws:// or wss:// URL", "elevenlabs": "the ElevenLabs agent id",
                "vapi": "the Vapi assistant id"}[driver]
        raise ValueError(f"the {driver} driver needs a reference: {what}")
    driver_ref = driver_ref.strip()
    if driver == "websocket":
        driver_ref = check_socket_url(driver_ref, "the websocket driver's URL")
    elif not _PROVIDER_ID_RE.match(driver_ref):
        raise ValueError(f"{driver} id {driver_ref!r} is invalid")
    return {
        "key": key,
        "name": name,
        "language": language,
        "agent_type": agent_type,
        "driver": driver,
        "driver_ref": driver_ref,
    }

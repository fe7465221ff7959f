"""Which bot a call gets: its media target, decided from the call, its agent, the routing
webhook, its number and its account.

``BotTargets.decide`` takes the first that applies:

1. the call's ``socket_url`` (``ws://…``/``wss://…``, ``elevenlabs``, ``elevenlabs&<agent
   id>``, ``vapi``, ``vapi&<assistant id>``, or ``agent:<key>`` for one of the account's
   agents);
2. the call's agent (``Call.agent``, the ``/v1`` surface);
3. the call's ``webhook_url``, through the routing webhook (3 s, no retry: ``connect``
   gives the target and maybe a session ``timeout``, ``hangup`` refuses the call,
   ``default`` or a failure falls through);
4. for an inbound call, its number's route (a bot, an agent, or a routing webhook);
5. the account's ``default_socket_url``, then its ``default_webhook_url``.

A provider without an id (bare ``elevenlabs`` or ``vapi``) takes, in this order, the id
set on the call's number (``PhoneNumber.elevenlabs_agent_id`` / ``vapi_assistant_id``;
the call's number is the one it was made to if inbound, the caller ID if outbound), the
account's default (``Account.elevenlabs_agent_id`` / ``vapi_assistant_id``), or the one
of the account's first active agent of that provider (``provider_target``). With none of
them, or a Vapi target without the account's Vapi API key (Vapi's API cannot be called
without one; an ElevenLabs agent may be public), the target is ``NotConfigured``: a
refusal whose message says what to set. A call that gets no target is refused (``Refusal``): hung up with
``cause``, or, decided before it is answered, refused with ``unanswered_cause``, which
picks the SIP response the caller gets (``gateway.calls.inbound``). Every step that asks
the routing webhook or refuses is written to the call's log (kind ``media``).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from gateway.calls import inbound
from gateway.domain import Direction, Driver, Surface
from gateway.media.connectors import redact
from gateway.models import Account, Agent, Call, PhoneNumber
from gateway.models.db import connection_scope
from gateway.models.validators import check_media_target
from gateway.webhooks.subscriptions import header_profile_of

#: The kind of a target that names one of the account's agents by key (``agent:<key>``).
AGENT = "agent"


@dataclass(frozen=True)
class Target:
    """Where a call's media goes: ``kind`` a ``Driver`` value or ``agent``, ``ref`` the
    URL, provider id or agent key (None: to be found in the account's agents)."""

    kind: str
    ref: str | None = None
    source: str = "socket_url"

    @property
    def label(self) -> str:
        if self.kind == Driver.WEBSOCKET:
            return redact(self.ref or "")
        return f"{self.kind}&{self.ref}" if self.ref else self.kind


class Refusal(Exception):
    """The call must not get a bot: hang up with ``reason``.  An inbound call decided
    before it is answered is refused with ``unanswered_cause`` instead (the cause picks the
    SIP response the caller gets: ``gateway.calls.inbound``). ``str()`` is the message for
    a person (the reason, unless a subclass says more)."""

    def __init__(self, reason: str, cause: str = "NORMAL_CLEARING",
                 unanswered_cause: str = inbound.UNAVAILABLE) -> None:
        super().__init__(reason)
        self.reason = reason
        self.cause = cause
        self.unanswered_cause = unanswered_cause


class NotConfigured(Refusal):
    """A provider target needs a setting the account (or the call's number) lacks; the
    message names it and how to set it."""

    def __init__(self, message: str, cause: str = "SERVICE_UNAVAILABLE") -> None:
        super().__init__("media_target_not_configured", cause, inbound.NO_ROUTE)
        self.message = message

    def __str__(self) -> str:
        return self.message


@dataclass(frozen=True)
class ProviderSetting:
    """Where a provider's settings live: the column of its default agent id (on
    ``Account`` and on ``PhoneNumber``), the account's API key column, whether a call
    needs that key, and the words and options that name them."""

    kind: str
    name: str
    ref_column: str
    ref_words: str
    ref_option: str
    key_column: str
    key_option: str
    key_required: bool


PROVIDER_SETTINGS = {
    Driver.ELEVENLABS.value: ProviderSetting(
        Driver.ELEVENLABS.value, "ElevenLabs", "elevenlabs_agent_id", "agent id", "--elevenlabs-agent-id",
        "elevenlabs_api_key", "--elevenlabs-api-key-file", key_required=False),
    Driver.VAPI.value: ProviderSetting(
        Driver.VAPI.value, "Vapi", "vapi_assistant_id", "assistant id", "--vapi-assistant-id",
        "vapi_api_key", "--vapi-api-key-file", key_required=True),
}


def call_number(direction: str, from_number: str | None, to_number: str | None) -> str | None:
    """The account's own number on a call: the one called if inbound, the caller ID if
    outbound (whose settings then apply)."""
    return to_number if direction == Direction.INBOUND else from_number


def provider_target(account: Account, target: Target, number: str | None = None, *,
                    cause: str = "SERVICE_UNAVAILABLE") -> Target:
    """``target`` with its provider's id filled in (see the module docstring); an id given
    is kept. ``NotConfigured`` (hanging up with ``cause``) when there is none, or for a Vapi
    target without the account's API key. Other targets are returned as they are. Runs
    queries: call it inside a connection scope."""
    setting = PROVIDER_SETTINGS.get(target.kind)
    if setting is None:
        return target
    ref = target.ref or _configured_ref(account, target.kind, setting, number)
    if not ref:
        raise NotConfigured(
            f"no {setting.name} {setting.ref_words} is configured for this account; pass {target.kind}&<"
            f"{setting.ref_words}>, or set one with 'voicegw accounts set-voice ACCOUNT {setting.ref_option} ID'"
            f" (or for a number, 'voicegw numbers set-voice NUMBER {setting.ref_option} ID')", cause)
    if setting.key_required and not getattr(account, setting.key_column):
        raise NotConfigured(
            f"no {setting.name} API key is configured for this account; set one with 'voicegw accounts"
            f" set-voice ACCOUNT {setting.key_option} FILE'", cause)
    return Target(target.kind, ref, target.source)


def _configured_ref(account: Account, kind: str, setting: ProviderSetting, number: str | None) -> str | None:
    if number:
        row = PhoneNumber.get_or_none(PhoneNumber.e164 == number, PhoneNumber.account == account.id,
                                      PhoneNumber.active == True)  # noqa: E712
        if row is not None and getattr(row, setting.ref_column):
            return getattr(row, setting.ref_column)
    if getattr(account, setting.ref_column):
        return getattr(account, setting.ref_column)
    agent = (Agent.select().where(Agent.account == account.id, Agent.driver == kind, Agent.active == True)  # noqa: E712
             .order_by(Agent.id).first())
    return agent.driver_ref if agent is not None and agent.driver_ref else None


def parse_target(value: str, source: str = "socket_url") -> Target:
    """The call-control API's forms (``check_media_target``), plus ``agent:<key>``."""
    text = (value or "").strip()
    if text.startswith(f"{AGENT}:") and len(text) > len(AGENT) + 1:
        return Target(AGENT, text[len(AGENT) + 1:], source)
    # The syntax only: the connection resolves the host and applies the outbound policy.
    text = check_media_target(text, source, check_host=False)  # ValueError with a clear message
    if "://" in text:
        return Target(Driver.WEBSOCKET.value, text, source)
    provider, _, ref = text.partition("&")
    return Target(provider, ref or None, source)


class BotTargets:
    """Decides calls' targets (see the module docstring).

    ``request_route`` asks a routing webhook (``gateway.webhooks.routing.request_route``'s
    signature); ``hangup_cause`` is what a call without a bot is hung up with; ``log(call_uuid,
    detail)`` writes an entry to the call's log."""

    def __init__(self, request_route: Callable, hangup_cause: str, log: Callable[[str, dict], None]) -> None:
        self.request_route = request_route
        self.hangup_cause = hangup_cause
        self.log = log

    def decide(self, call: Call, account: Account) -> tuple[Target, float | None]:
        """The call's media target and an optional session timeout; raises ``Refusal``.
        Its queries hold a connection each; none is held while the routing webhook answers."""
        number = call_number(call.direction, call.from_number, call.to_number)
        if call.socket_url:
            try:
                target = parse_target(call.socket_url, "socket_url")
            except ValueError as exc:
                self.log(call.uuid, {"event": "bad_media_target", "error": str(exc)})
                raise Refusal("invalid_media_target", self.hangup_cause) from None
            return self.resolve(account, target, number), None
        agent_id = getattr(call, "agent_id", None)  # a /v1 call names the agent it goes to
        if agent_id is not None:
            with connection_scope():
                agent = Agent.get_or_none(Agent.id == agent_id)
            if agent is not None and agent.active:
                return self.resolve(account, Target(agent.driver, agent.driver_ref, "agent"), number), None
        if call.webhook_url:
            routed = self.route(call, account, call.webhook_url)
            if routed is not None:
                return routed
        if call.direction == Direction.INBOUND:
            with connection_scope():
                did = PhoneNumber.get_or_none(PhoneNumber.e164 == call.to_number,
                                              PhoneNumber.active == True)  # noqa: E712
                agent = did.agent if did is not None and did.agent_id is not None else None
            if did is not None and did.account_id == account.id:
                if did.route == "bot" and did.socket_url:
                    return self.resolve(account, parse_target(did.socket_url, "number"), number), None
                if did.route == "agent" and agent is not None:
                    return self.resolve(account, Target(agent.driver, agent.driver_ref, "number"), number), None
                if did.route == "webhook" and did.webhook_url:
                    routed = self.route(call, account, did.webhook_url)
                    if routed is not None:
                        return routed
        if account.default_socket_url:
            return self.resolve(account, parse_target(account.default_socket_url, "account_default"), number), None
        if account.default_webhook_url:
            routed = self.route(call, account, account.default_webhook_url)
            if routed is not None:
                return routed
        raise Refusal("no_media_target", self.hangup_cause, inbound.NO_ROUTE)

    def route(self, call: Call, account: Account, url: str) -> tuple[Target, float | None] | None:
        """Ask the routing webhook; None means "default" (fall through)."""
        try:
            with connection_scope():
                profile = header_profile_of(account.id, Surface.CONTROL.value)
            decision = self.request_route(url=url, secret=account.webhook_secret, call_uuid=call.uuid,
                                          direction=call.direction, caller_number=call.from_number,
                                          destination_number=call.to_number, account_id=str(account.id),
                                          timeout=3.0, header_profile=profile)
        except Exception as exc:  # the webhook module's own failure: same as "default"
            self.log(call.uuid, {"event": "routing_webhook_failed", "error": str(exc)[:200]})
            return None
        action = getattr(decision, "action", "default")
        self.log(call.uuid, {"event": "routing_webhook", "action": action,
                             "reason": getattr(decision, "reason", None)})
        if action == "hangup":
            raise Refusal(getattr(decision, "reason", None) or "routing_webhook_hangup",
                          unanswered_cause=inbound.DECLINED)
        if action == "connect" and getattr(decision, "socket_url", None):
            try:
                target = parse_target(decision.socket_url, "routing_webhook")
            except ValueError as exc:
                self.log(call.uuid, {"event": "routing_webhook_bad_target", "error": str(exc)})
                return None
            timeout = getattr(decision, "timeout", None)
            number = call_number(call.direction, call.from_number, call.to_number)
            return self.resolve(account, target, number), (float(timeout) if timeout else None)
        return None

    def resolve(self, account: Account, target: Target, number: str | None = None) -> Target:
        """Expand ``agent:<key>`` (``Refusal`` for a key the account has no active agent
        for) and fill in a provider's id (``provider_target``, with the settings of
        ``number``, the account's own number on the call)."""
        with connection_scope():
            if target.kind == AGENT:
                agent = Agent.get_or_none(Agent.account == account.id, Agent.key == target.ref)
                if agent is None or not agent.active:
                    raise Refusal(f"agent {target.ref!r} not found", self.hangup_cause, inbound.NO_ROUTE)
                target = Target(agent.driver, agent.driver_ref, target.source)
            return provider_target(account, target, number, cause=self.hangup_cause)

    def given(self, account: Account, value: str, source: str, number: str | None = None) -> Target:
        """A target given as text (a redirect's ``media_server``, the account's fallback),
        resolved; ``ValueError`` for a malformed one, ``Refusal`` for an unknown agent or a
        provider not configured."""
        return self.resolve(account, parse_target(value, source), number)

"""What each surface's customers receive: pure builders of webhook events.

A call belongs to the surface that placed it (``Call.surface``); its status changes are
announced in that surface's contract, and only there:

=========  ===========================  =============================================
surface    transition                   event (body)
=========  ===========================  =============================================
``api``    media session established    ``call.answered``  (call-control contract)
(and None: → completed/missed/failed    ``call.completed``
inbound,
scripts)
``v1``     → in_progress                ``call_started``   (agent-call contract)
           → completed/missed/failed    ``call_completed``
           provider result saved        ``all_processing_completed``
``public`` → ringing                    ``call.ringing``   (public calling API:
           → in_progress                ``call.in_progress`` ``{id, event, created_at,
           → completed/missed/failed    ``call.completed`` / ``call.missed`` /
                                        ``call.failed``      data: <call object>}``)
``voice``  (no webhook contract)        nothing
=========  ===========================  =============================================

Where they go and which are sent is the account's ``WebhookSubscription`` for the
surface (see :func:`destination`). Status words are each surface's own
(``gateway.domain.STATUS_WORDS``, which its REST views speak too); the public API's call
object is :func:`public_call_object`. Every builder is pure: rows in, events out; the
outbox writes them, the dispatcher signs and sends them.

``call.answered`` is "sent when the media session is established": not on CHANNEL_ANSWER
but once the call's bot and FreeSWITCH's audio stream are both connected, which
``MediaSessions`` records as a ``media`` entry ``gateway.domain.MEDIA_ESTABLISHED`` in the call's
log; the outbox builds the event from that entry, in the transaction that writes it. A
call that never gets a bot (refused, routing webhook ``hangup``, bot unreachable, the
media bridge disabled) gets ``call.completed`` only.
"""
from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timezone
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from gateway.domain import FINAL, Status, Surface, Transition, status_word
from gateway.webhooks import profiles

CONTROL, AGENTS, PUBLIC = Surface.CONTROL.value, Surface.AGENTS.value, Surface.PUBLIC.value
VOICE = Surface.VOICE.value
#: The surfaces whose calls announce their status changes.
SURFACES = (CONTROL, AGENTS, PUBLIC)
#: The surfaces an account subscribes to: ``voice`` sends campaign progress
#: (``gateway.dialer.events``), not call events.
SUBSCRIBABLE = (*SURFACES, VOICE)

EVENT_TYPES = {
    CONTROL: ("call.answered", "call.completed"),
    AGENTS: ("call_started", "call_completed", "all_processing_completed"),
    PUBLIC: ("call.ringing", "call.in_progress", "call.completed", "call.missed", "call.failed"),
    VOICE: ("campaign.started", "campaign.paused", "campaign.stopped", "campaign.completed",
            "campaign.contact_result"),
}

@dataclass(frozen=True)
class OutgoingEvent:
    """One event for one URL. The signature headers (of ``profile``,
    ``gateway.webhooks.profiles``) are added at each attempt."""

    surface: str
    event_type: str
    url: str
    payload: dict
    headers: dict
    event_id: str
    call_uuid: str | None = None
    profile: str = profiles.GATEWAY


@dataclass(frozen=True)
class CallState:
    """The call as of one transition: a batch may carry several transitions of a call,
    and the row already holds the last one."""

    status: str
    at: datetime
    end_reason: str | None = None
    hangup_cause: str | None = None
    billsec: int | None = None
    final: bool = False

    @classmethod
    def of(cls, transition: Transition) -> CallState:
        final = transition.to_status in FINAL
        return cls(
            status=transition.to_status.value,
            at=transition.at,
            end_reason=transition.end_reason.value if final and transition.end_reason else None,
            hangup_cause=transition.hangup_cause if final else None,
            billsec=(transition.billsec or 0) if final else None,
            final=final,
        )

    @classmethod
    def of_row(cls, call, at: datetime | None = None) -> CallState:
        final = Status(call.status) in FINAL
        return cls(
            status=call.status,
            at=at or datetime.now(timezone.utc),
            end_reason=call.end_reason if final else None,
            hangup_cause=call.hangup_cause if final else None,
            billsec=(call.billsec or 0) if final else None,
            final=final,
        )


def new_event_id() -> str:
    return "evt_" + secrets.token_hex(16)


def new_request_id() -> str:
    return "req_" + secrets.token_hex(12)


def iso_z(value: datetime) -> str:
    """``2026-02-09T14:30:00Z``: UTC, whole seconds."""
    return value.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def iso_local(value: datetime, tz_name: str | None) -> str:
    """``2026-06-04T21:42:08+05:30``: in the account's time zone, whole seconds."""
    try:
        zone = ZoneInfo(tz_name or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        zone = timezone.utc
    return value.astimezone(zone).isoformat(timespec="seconds")


def call_surface(call) -> str | None:
    """The surface whose contract announces this call's events (None: no contract)."""
    surface = call.surface
    if surface is None:
        return CONTROL  # inbound calls and script-placed calls: the call-control callbacks
    return surface if surface in SURFACES else None


def header_profile(subscription=None) -> str:
    """The subscription's header profile (``gateway.webhooks.profiles``); ours without one."""
    return subscription.header_profile if subscription is not None else profiles.GATEWAY


def destination(call, account, surface: str, subscription=None) -> str | None:
    """Where this call's events go, or None if nowhere.

    ``api``: the call's own ``webhook_url`` (the contract sends status callbacks to the
    routing webhook's URL), else the subscription's URL, else the account's
    ``default_webhook_url``. ``v1`` and ``public``: the subscription's URL. An inactive
    subscription sends nothing.
    """
    if subscription is not None and not subscription.active:
        return None
    sub_url = subscription.url if subscription is not None else None
    if surface == CONTROL:
        return call.webhook_url or sub_url or account.default_webhook_url
    return sub_url


def subscribed(event_type: str, subscription=None) -> bool:
    return subscription is None or subscription.events is None or event_type in subscription.events


# -- bodies -------------------------------------------------------------------------------


def control_payload(event_type: str, call, state: CallState) -> dict:
    """The call-control contract's status callback body."""
    body = {"event_type": event_type, "call_uuid": call.uuid, "timestamp": iso_z(state.at),
            # the /api vocabulary, as GET /api/calls/{uuid} shows it (Twilio's words)
            "call_status": status_word(Surface.CONTROL, state.status, state.end_reason)}
    if event_type == "call.completed":
        body["duration"] = state.billsec or 0
        body["hangup_cause"] = state.hangup_cause
    return body


# Speaker names as the /v1 surface shows them (the events contract's "bot" / "user").
SPEAKERS = {"agent": "bot", "bot": "bot", "assistant": "bot", "user": "user", "customer": "user"}


def transcript_turns(value) -> list | None:
    """A transcript as ``[{"bot": "…"}, {"user": "…"}]``.

    Text (the minimal contract's ``"agent: Hello\\nuser: Hi"``) is split into lines of
    ``speaker: text``; a line without a speaker continues the previous turn. Known speaker
    names are mapped (``agent``/``assistant`` → ``bot``, ``customer`` → ``user``), others
    are kept. A list keeps its turns, mapped the same way; anything else is None.
    """
    if value is None:
        return None
    if isinstance(value, str):
        turns: list[dict] = []
        for line in value.splitlines():
            if not line.strip():
                continue
            speaker, sep, text = line.partition(":")
            speaker = speaker.strip()
            if sep and speaker and " " not in speaker:
                turns.append({SPEAKERS.get(speaker.lower(), speaker): text.strip()})
            elif turns:
                key = next(iter(turns[-1]))
                turns[-1][key] += "\n" + line.strip()
            else:
                turns.append({"text": line.strip()})
        return turns
    if isinstance(value, list):
        return [{SPEAKERS.get(str(k).lower(), str(k)): "" if v is None else str(v) for k, v in turn.items()}
                for turn in value if isinstance(turn, dict)]
    return None


def _agent(call):
    if call.agent_id is None:
        return None
    return call.agent  # joined by the outbox; a lazy load otherwise


def agents_payload(event_type: str, call, state: CallState) -> dict:
    """The agent-call contract's event body (its example payload, every field), with the
    values ``GET /v1/calls/{id}`` shows: ``status`` in the /v1 vocabulary, ``agent_id``
    the agent's id (its key is what ``agent`` takes)."""
    agent = _agent(call)
    return {
        "event": event_type,
        "call_id": call.uuid,
        "phone_number": call.to_number if call.direction == "outbound" else call.from_number,
        "contact_name": call.contact_name,
        "agent_id": str(agent.id) if agent is not None else None,
        "agent_name": agent.name if agent is not None else None,
        "status": status_word(Surface.AGENTS, state.status, state.end_reason),
        "direction": call.direction,
        "duration_seconds": state.billsec,
        "recording_url": call.recording_url,
        "transcript": transcript_turns(call.transcript),
        "analysis": call.analysis,
        "campaign_id": call.campaign_id,
        "custom_args": call.custom_args or {},
        "called_at": iso_z(call.created_at),
        "timestamp": iso_z(state.at),
    }


def public_call_object(call, account, state: CallState | None = None) -> dict:
    """The public calling API's call object (List calls, and ``data`` of ``call.*``).

    ``unique_id`` is ``run_<campaign_id>`` for a call of an API run, else the call id.
    Timestamps are in the account's time zone.
    """
    state = state or CallState.of_row(call)
    campaign_id = call.campaign_id
    return {
        "unique_id": f"run_{campaign_id}" if campaign_id is not None else call.uuid,
        "call_id": call.uuid,
        "direction": call.direction,
        "from_number": call.from_number,
        "to_number": call.to_number,
        "status": state.status,
        "end_reason": state.end_reason,
        "duration_sec": state.billsec,
        "campaign_id": campaign_id,
        "reference_id": call.reference_id,
        "created_at": iso_local(call.created_at, account.timezone),
    }


def public_payload(event_type: str, event_id: str, call, account, state: CallState) -> dict:
    return {
        "id": event_id,
        "event": event_type,
        "created_at": iso_local(state.at, account.timezone),
        "data": public_call_object(call, account, state),
    }


def _event(surface: str, event_type: str, url: str, call, account, state: CallState,
           subscription=None) -> OutgoingEvent:
    event_id = new_event_id()
    profile = header_profile(subscription)
    if surface == CONTROL:
        payload = control_payload(event_type, call, state)
    elif surface == AGENTS:
        payload = agents_payload(event_type, call, state)
    else:
        payload = public_payload(event_type, event_id, call, account, state)
    headers = profiles.event_headers(profile, surface, event_type, event_id, call.uuid)
    return OutgoingEvent(surface, event_type, url, payload, headers, event_id, call.uuid, profile)


def transition_event_type(surface: str, status: str) -> str | None:
    """The event a surface sends when a call reaches ``status`` (None: none)."""
    final = Status(status) in FINAL
    if surface == CONTROL:
        return "call.completed" if final else None  # call.answered: see for_media_established
    if surface == AGENTS:
        return "call_completed" if final else ("call_started" if status == "in_progress" else None)
    if surface == PUBLIC:
        return f"call.{status}" if status != "queued" else None
    return None


def for_state(call, account, state: CallState, subscription=None) -> list[OutgoingEvent]:
    """The events announcing that ``call`` reached ``state``."""
    surface = call_surface(call)
    if surface is None:
        return []
    event_type = transition_event_type(surface, state.status)
    if event_type is None or not subscribed(event_type, subscription):
        return []
    url = destination(call, account, surface, subscription)
    if not url:
        return []
    return [_event(surface, event_type, url, call, account, state, subscription)]


def for_transition(call, account, transition: Transition, subscription=None) -> list[OutgoingEvent]:
    """The events one status transition of ``call`` causes."""
    return for_state(call, account, CallState.of(transition), subscription)


def for_media_established(call, account, at: datetime, subscription=None) -> list[OutgoingEvent]:
    """``call.answered`` (the call-control callbacks): the call's media session is up."""
    if call_surface(call) != CONTROL or not subscribed("call.answered", subscription):
        return []
    url = destination(call, account, CONTROL, subscription)
    if not url:
        return []
    return [_event(CONTROL, "call.answered", url, call, account, CallState(Status.IN_PROGRESS.value, at),
                   subscription)]


def for_processing(call, account, subscription=None, at: datetime | None = None) -> list[OutgoingEvent]:
    """``all_processing_completed`` (``v1`` calls): transcript and analysis are saved."""
    surface = call_surface(call)
    if surface != AGENTS or not subscribed("all_processing_completed", subscription):
        return []
    url = destination(call, account, surface, subscription)
    if not url:
        return []
    return [_event(surface, "all_processing_completed", url, call, account, CallState.of_row(call, at),
                   subscription)]


def routing_request(*, call_uuid: str, direction: str, caller_number: str, destination_number: str,
                    account_id, at: datetime | None = None, request_id: str | None = None) -> dict:
    """The call-control contract's ``call.routing_request`` body."""
    return {
        "event_type": "call.routing_request",
        "call_uuid": call_uuid,
        "timestamp": iso_z(at or datetime.now(timezone.utc)),
        "direction": direction,
        "caller_number": caller_number,
        "destination_number": destination_number,
        "account_id": str(account_id),
        "request_id": request_id or new_request_id(),
    }

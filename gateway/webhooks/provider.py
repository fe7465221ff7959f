"""Provider call ids and completion reports (the agent-call contract's ingest).

A native provider (ElevenLabs, Vapi, …) knows our call by its own id. The media side
registers that id when the provider's session starts (:func:`register_provider_call`);
the provider's completion report then names it (``POST /v1/webhooks/call-completed``,
``gateway.api.agents.ingest``), signed with the webhook secret of the call's account
(:func:`signed_by`), and :func:`record_completion` saves the result onto the call, once.
A plain-WebSocket agent (driver ``websocket``) has no id of its own for the call: its
report names the call by the gateway's uuid (lower case, as the gateway gave it), and the
link is made when the first such report is recorded (provider ``websocket``).

* the first report for a ``provider_call_id`` is applied; any later one changes
  nothing and is answered as a duplicate (``ProviderCall.completed_at`` is set by a
  guarded UPDATE, so two concurrent reports cannot both apply);
* the transcript, the duration (talk seconds, ``billsec``; ``duration_sec`` too if
  unknown), and the analysis / recording URL when given, are saved; a call that
  FreeSWITCH already ended keeps the billsec FreeSWITCH measured (and billed); the
  provider's own figure is kept beside it either way (``ProviderCall.duration``, which
  ``GET /v1/calls/{id}`` shows as ``provider_duration_seconds``);
* the status: FreeSWITCH's word is final. A call that has already ended keeps its
  status (the provider's is kept on the ``ProviderCall``); a call still live is
  ended with the provider's status, and its final events are enqueued (they are not
  enqueued again when FreeSWITCH's hangup arrives: the outbox de-duplicates);
* ``all_processing_completed`` is enqueued for ``v1`` calls, in the same transaction.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from peewee import JOIN

from gateway.domain import FINAL, Driver, Status
from gateway.models import Account, Agent, Call, ProviderCall, database, utcnow
from gateway.webhooks import events as ev
from gateway.webhooks import profiles
from gateway.webhooks.events import transcript_turns
from gateway.webhooks.outbox import enqueue_processing_completed, enqueue_state
from gateway.uuids import parse_uuid
from gateway.webhooks.signing import SIGNATURE_HEADER, TIMESTAMPED_HEADER, verify, verify_payload, verify_timestamped

# Provider status → (our status, end reason, the Hangup-Cause that would have said so).
PROVIDER_STATUSES = {
    "completed": ("completed", "completed", "NORMAL_CLEARING"),
    "failed": ("failed", "failed", "NORMAL_TEMPORARY_FAILURE"),
    "busy": ("failed", "busy", "USER_BUSY"),
    "no-answer": ("missed", "no_answer", "NO_ANSWER"),
    "no_answer": ("missed", "no_answer", "NO_ANSWER"),
    "missed": ("missed", "no_answer", "NO_ANSWER"),
    "rejected": ("failed", "rejected", "CALL_REJECTED"),
    "canceled": ("failed", "canceled", "ORIGINATOR_CANCEL"),
    "cancelled": ("failed", "canceled", "ORIGINATOR_CANCEL"),
}

MAX_PROVIDER_CALL_ID = 128
#: The ``ProviderCall.provider`` of a plain-WebSocket agent's report.
WEBSOCKET = Driver.WEBSOCKET.value


@dataclass(frozen=True)
class Completion:
    """A validated completion report."""

    provider_call_id: str
    status: str
    transcript: list | None = None
    duration: int | None = None
    analysis: dict | None = None
    recording_url: str | None = None
    has_analysis: bool = False
    has_recording_url: bool = False


def register_provider_call(call_uuid: str, provider_call_id: str, provider: str | None = None) -> ProviderCall:
    """Remember that ``provider_call_id`` is the provider's id for our call ``call_uuid``."""
    if not provider_call_id or len(provider_call_id) > MAX_PROVIDER_CALL_ID:
        raise ValueError(f"provider_call_id must be 1-{MAX_PROVIDER_CALL_ID} characters")
    return ProviderCall.create(provider_call_id=provider_call_id, call=call_uuid, provider=provider)


def websocket_agent_call(call_uuid: str) -> Call | None:
    """The call ``call_uuid`` names if a plain-WebSocket agent has it, with its account:
    such an agent reports by the gateway's uuid, exactly as given (lower case)."""
    if parse_uuid(call_uuid) != call_uuid:
        return None
    return (Call.select(Call, Account)
            .join(Account, on=(Call.account == Account.id))
            .switch(Call)
            .join(Agent, on=(Call.agent == Agent.id))
            .where((Call.uuid == call_uuid) & (Agent.driver == Driver.WEBSOCKET.value))
            .first())


def find_provider_call(provider_call_id: str) -> ProviderCall | None:
    """The ``ProviderCall`` with its call and account loaded, or None. For a WebSocket
    agent's call named by its uuid, the link its first report makes (not saved yet)."""
    link = (ProviderCall.select(ProviderCall, Call, Account)
            .join(Call).join(Account)
            .where(ProviderCall.provider_call_id == provider_call_id)
            .first())
    if link is not None:
        return link
    call = websocket_agent_call(provider_call_id)
    return ProviderCall(provider_call_id=provider_call_id, call=call, provider=WEBSOCKET) if call else None


def signed_by(secrets: list[str], raw: bytes, payload, headers) -> bool:
    """Whether a report is signed with one of ``secrets``, the way the gateway signs its own
    webhooks (``gateway.webhooks.signing``): ``X-Webhook-Signature: t=<unix>,v1=<hex>``
    (within a 300 s tolerance), or ``X-Signature: sha256=<hex>`` (also under
    ``X-Voicegw-Signature``) over the raw body or over the canonical JSON of the body, as
    the call-control contract's verifier computes it."""
    stamped = headers.get(TIMESTAMPED_HEADER)
    if stamped:
        return verify_timestamped(secrets, raw, stamped)
    for name in (SIGNATURE_HEADER, profiles.OUR_AGENTS_SIGNATURE_HEADER):
        header = headers.get(name)
        if header:
            return verify(secrets, raw, header) or verify_payload(secrets, payload, header)
    return False


def text_fault(value) -> str | None:
    """What makes a string of ``value`` (a key or a value, at any depth) unfit to keep,
    or None. PostgreSQL text cannot hold a NUL character, and an unpaired surrogate
    (JSON can spell one: ``"\\ud800"``) has no UTF-8 form: neither can be stored,
    looked up or serialised canonically."""
    stack = [value]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            stack.extend(node.keys())
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
        elif isinstance(node, str):
            if "\x00" in node:
                return "a NUL character"
            try:
                node.encode("utf-8")
            except UnicodeEncodeError:
                return "an unpaired surrogate"
    return None


def clean_completion(payload: dict) -> Completion:
    """Validate a completion report; raise ``ValueError`` with the client's message."""
    provider_call_id = payload.get("provider_call_id")
    if not isinstance(provider_call_id, str) or not provider_call_id.strip():
        raise ValueError("provider_call_id is required")
    if len(provider_call_id) > MAX_PROVIDER_CALL_ID:
        raise ValueError(f"provider_call_id is longer than {MAX_PROVIDER_CALL_ID} characters")
    event_type = payload.get("event_type", "call.completed")
    if event_type != "call.completed":
        raise ValueError("event_type must be call.completed")
    status = payload.get("status")
    if not isinstance(status, str) or status.strip().lower() not in PROVIDER_STATUSES:
        raise ValueError(f"status must be one of {', '.join(sorted(PROVIDER_STATUSES))}")
    duration = payload.get("duration")
    if duration is not None:
        if isinstance(duration, bool) or not isinstance(duration, (int, float)) or not 0 <= duration < 10 ** 7:
            raise ValueError("duration must be a number of seconds")
        duration = int(round(duration))
    transcript = payload.get("transcript")
    if transcript is not None and not isinstance(transcript, (str, list)):
        raise ValueError("transcript must be a string or a list")
    transcript = transcript_turns(transcript)
    analysis = payload.get("analysis")
    if analysis is not None and not isinstance(analysis, dict):
        raise ValueError("analysis must be an object")
    recording_url = payload.get("recording_url")
    if recording_url is not None and (not isinstance(recording_url, str) or len(recording_url) > 2048):
        raise ValueError("recording_url must be a URL")
    return Completion(provider_call_id.strip(), status.strip().lower(), transcript, duration, analysis,
                      recording_url, "analysis" in payload, "recording_url" in payload)


def _load_call(call_uuid: str) -> Call:
    return (Call.select(Call, Account, Agent)
            .join(Account, on=(Call.account == Account.id))
            .switch(Call)
            .join(Agent, JOIN.LEFT_OUTER, on=(Call.agent == Agent.id))
            .where(Call.uuid == call_uuid)
            .get())


def record_completion(report: Completion, payload: dict | None = None,
                      now: datetime | None = None) -> tuple[Call, bool]:
    """Apply a completion report once; return ``(call, duplicate)``.

    Raise ``LookupError`` if no call has this provider id.
    """
    now = now or utcnow()
    with database.atomic():
        websocket_call = websocket_agent_call(report.provider_call_id)
        if websocket_call is not None:
            (ProviderCall.insert(provider_call_id=report.provider_call_id, call=websocket_call.uuid,
                                 provider=WEBSOCKET)
             .on_conflict_ignore().execute())
        applied = (ProviderCall
                   .update(completed_at=now, status=report.status, payload=payload, duration=report.duration)
                   .where((ProviderCall.provider_call_id == report.provider_call_id)
                          & ProviderCall.completed_at.is_null())
                   .execute())
        link = ProviderCall.get_or_none(ProviderCall.provider_call_id == report.provider_call_id)
        if link is None:
            raise LookupError(report.provider_call_id)
        call = _load_call(link.call_id)
        if not applied:
            return call, True
        updates: dict = {Call.transcript: report.transcript, Call.updated_at: now}
        if report.has_analysis:
            updates[Call.analysis] = report.analysis
        if report.has_recording_url:
            updates[Call.recording_url] = report.recording_url
        ended_now = Status(call.status) not in FINAL
        if report.duration is not None:
            # FreeSWITCH's measure of an ended call stands (it is what was billed).
            if ended_now or call.billsec is None:
                updates[Call.billsec] = report.duration
            if call.duration_sec is None:
                updates[Call.duration_sec] = report.duration
        if ended_now:
            status, end_reason, cause = PROVIDER_STATUSES[report.status]
            updates.update({Call.status: status, Call.end_reason: end_reason, Call.hangup_cause: cause,
                            Call.ended_at: now})
            if call.billsec is None and report.duration is None:
                updates[Call.billsec] = 0
        Call.update(updates).where(Call.uuid == call.uuid).execute()
        call = _load_call(call.uuid)
        if ended_now:
            enqueue_state(call, ev.CallState.of_row(call, now))
        enqueue_processing_completed(call, now)
    return call, False

"""The call state machine, without IO: FreeSWITCH events in, transitions out.

The vocabulary (``Status``, ``EndReason``, ``Transition``) is ``gateway.domain``'s.

``ringing`` is optional (a loopback or instantly answered leg goes straight to
``in_progress``).  Only CHANNEL_ANSWER means answered: FreeSWITCH's originate also
succeeds on early media (183), which is still ``ringing`` here.  The final state comes
from CHANNEL_HANGUP_COMPLETE, which carries billsec/duration, or from a failed
originate job that never produced a channel (INVALID_GATEWAY and the like).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone

# LIVE is not used here: the controller imports it from this module with the machine.
from gateway.domain import FINAL, LIVE, EndReason, Status, Transition  # noqa: F401


# Hangup-Cause of a call that was never answered → why it ended.
_UNANSWERED = {
    "NO_ANSWER": EndReason.NO_ANSWER,
    "NO_USER_RESPONSE": EndReason.NO_ANSWER,
    "PROGRESS_TIMEOUT": EndReason.NO_ANSWER,
    "ALLOTTED_TIMEOUT": EndReason.NO_ANSWER,
    "USER_BUSY": EndReason.BUSY,
    "BUSY_EVERYWHERE": EndReason.BUSY,
    "CALL_REJECTED": EndReason.REJECTED,
    "DECLINE": EndReason.REJECTED,
    "UNWANTED": EndReason.REJECTED,
    "REJECT_ALL": EndReason.REJECTED,
    "NORMAL_CLEARING": EndReason.CANCELED,  # we (or the far end) hung up before answer
    "ORIGINATOR_CANCEL": EndReason.CANCELED,
    "MANAGER_REQUEST": EndReason.CANCELED,
    "LOSE_RACE": EndReason.CANCELED,
    "SYSTEM_SHUTDOWN": EndReason.CANCELED,
}


def classify_end(cause: str, answered: bool, rang: bool) -> tuple[Status, EndReason]:
    """Final status and end reason for a Hangup-Cause."""
    if answered:
        return Status.COMPLETED, EndReason.COMPLETED
    reason = _UNANSWERED.get(cause.upper(), EndReason.FAILED)
    if reason is EndReason.NO_ANSWER or (reason is EndReason.CANCELED and rang):
        return Status.MISSED, reason
    return Status.FAILED, reason


@dataclass(frozen=True, slots=True)
class CallView:
    """What the state machine needs to know about a call row."""

    status: Status
    answered: bool = False
    rang: bool = False


def _epoch_usec(value: str | None) -> datetime | None:
    if not value or not value.isdigit() or value == "0":
        return None
    return datetime.fromtimestamp(int(value) / 1_000_000, tz=timezone.utc)


def _int(value: str | None) -> int | None:
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


def event_time(event) -> datetime:
    return _epoch_usec(event.get("Event-Date-Timestamp")) or datetime.now(timezone.utc)


def next_transition(call: CallView, event) -> Transition | None:
    """The transition a channel event causes for this call, or ``None``."""
    if call.status in FINAL:
        return None
    name = event.name
    if name in ("CHANNEL_PROGRESS", "CHANNEL_PROGRESS_MEDIA"):
        if call.status is Status.QUEUED:
            return Transition(Status.RINGING, event_time(event), name)
        return None
    if name == "CHANNEL_ANSWER":
        if call.status is not Status.IN_PROGRESS:
            return Transition(Status.IN_PROGRESS, event_time(event), name)
        return None
    if name == "CHANNEL_HANGUP_COMPLETE":
        cause = event.get("Hangup-Cause") or event.get("variable_hangup_cause") or "NORMAL_CLEARING"
        answered = call.answered or bool(_epoch_usec(event.get("variable_answer_uepoch")))
        status, reason = classify_end(cause, answered, call.rang or call.status is Status.RINGING)
        return Transition(
            status, event_time(event), name, end_reason=reason, hangup_cause=cause,
            billsec=_int(event.get("variable_billsec")) or 0,
            duration_sec=_int(event.get("variable_duration")) or 0,
            detail={"sip_term_status": event.get("variable_sip_term_status"),
                    "disposition": event.get("variable_sip_hangup_disposition")},
        )
    return None


def originate_failed(call: CallView, body: str, at: datetime) -> Transition | None:
    """A BACKGROUND_JOB ``-ERR <CAUSE>`` for an originate.

    Most failures also produce CHANNEL_HANGUP_COMPLETE, which wins if it came first;
    early failures (INVALID_GATEWAY, GATEWAY_DOWN, …) create no channel at all, so the
    job result is the only news we get.
    """
    if call.status in FINAL or not body.startswith("-ERR"):
        return None
    cause = body[4:].strip() or "NORMAL_TEMPORARY_FAILURE"
    status, reason = classify_end(cause, False, call.rang)
    return Transition(status, at, "BACKGROUND_JOB", end_reason=reason, hangup_cause=cause,
                      billsec=0, duration_sec=0, detail={"job_result": body.strip()})


def found_on_reconnect(call: CallView, channel) -> Transition | None:
    """What a live channel's CHANNEL_DATA (``uuid_dump <uuid> json``, read when the gateway
    listens again) says happened while it was not listening, or ``None``.

    ``show channels`` has no answer time (its columns are fixed in ``switch_core_sqldb.c``),
    and the channel variables ``answer_epoch``/``answer_uepoch``/``billsec`` are set only when
    the channel hangs up (``switch_channel_set_timestamps``, called from the hangup state).
    While the channel is up, its caller profile's times are the record:
    ``Caller-Channel-Answered-Time`` (set by ``switch_channel_perform_mark_answered``, kept
    across transfers), ``Caller-Channel-Progress-Time`` (180) and
    ``Caller-Channel-Progress-Media-Time`` (183), microseconds since the epoch, 0 if not yet
    (``switch_caller.c``; research/fs-captures/sip_inbound_9201_*.control.wire).
    """
    if call.status in FINAL or call.status is Status.IN_PROGRESS:
        return None
    answered = _epoch_usec(channel.get("Caller-Channel-Answered-Time"))
    if answered is not None:
        return Transition(Status.IN_PROGRESS, answered, "reconcile",
                          detail={"note": "answered while the gateway was not listening; "
                                          "answer time from FreeSWITCH (uuid_dump)"})
    if call.status is not Status.QUEUED:
        return None
    rang = [t for t in (_epoch_usec(channel.get("Caller-Channel-Progress-Time")),
                        _epoch_usec(channel.get("Caller-Channel-Progress-Media-Time"))) if t is not None]
    if not rang:
        return None
    return Transition(Status.RINGING, min(rang), "reconcile",
                      detail={"note": "rang while the gateway was not listening; "
                                      "progress time from FreeSWITCH (uuid_dump)"})


def channel_vanished(call: CallView, created_at: datetime, answered_at: datetime | None,
                     now: datetime) -> Transition:
    """The end of a call whose channel FreeSWITCH no longer has when the gateway listens
    again (FreeSWITCH restarted, the link or the gateway was down while it hung up).

    Its real end is gone with the channel: ``hangup_cause``, ``billsec`` and the end time
    exist only in CHANNEL_HANGUP_COMPLETE (sent to whoever listened then: an ESL listener's
    queue dies with its connection) and in the CDR modules (mod_cdr_csv, mod_xml_cdr,
    mod_json_cdr), which the shipped configuration does not load; ``show channels`` and
    ``uuid_*`` know only live channels.  So the call ends at ``now`` with
    ``hangup_cause = CHANNEL_GONE`` and ``ended_at_upper_bound``: a call the gateway knew
    answered completes, its answer time kept and its billsec the longest it can have been;
    one it did not fails (whether it was answered, and how it ended, is unknown).
    """
    if call.answered:
        status, reason = Status.COMPLETED, EndReason.COMPLETED
        billsec = max(0, int((now - answered_at).total_seconds())) if answered_at else 0
    else:
        status, reason, billsec = Status.FAILED, EndReason.FAILED, 0
    return Transition(
        status, now, "reconcile", end_reason=reason, hangup_cause="CHANNEL_GONE", billsec=billsec,
        duration_sec=max(0, int((now - created_at).total_seconds())), ended_at_upper_bound=True,
        detail={"note": "channel no longer on FreeSWITCH when the gateway listened again: it ended "
                        "unseen, before this; ended_at, billsec and duration are upper bounds"},
    )

"""Writes of call rows and their event log.

A status change and its log entry are one transaction, so a reader never sees a
status without the event that explains it (and later, the webhook that announces it).

This is the controller's hot path (several writes per call), so the status updates
are plain parametrised SQL built once per kind of transition, and a batch's log entries
go in with one multi-row INSERT.
"""

from __future__ import annotations

from datetime import datetime
from functools import lru_cache
from typing import Callable, Iterable

from gateway.domain import FINAL, Status, Transition
from gateway.models import Call, CallEvent, database, utcnow

_FINAL_COLUMNS = ("ended_at", "end_reason", "hangup_cause", "billsec", "duration_sec", "ended_at_upper_bound")


def _columns(status: Status) -> tuple[str, ...]:
    if status is Status.RINGING:
        return ("status", "updated_at", "ringing_at")
    if status is Status.IN_PROGRESS:
        return ("status", "updated_at", "answered_at")
    if status in FINAL:
        return ("status", "updated_at") + _FINAL_COLUMNS
    return ("status", "updated_at")


@lru_cache(maxsize=None)
def _update_sql(status: Status, param: str) -> str:
    assignments = ", ".join(f'"{column}" = {param}' for column in _columns(status))
    return f'UPDATE "{Call._meta.table_name}" SET {assignments} WHERE "uuid" = {param}'


def _timestamp(value: datetime) -> object:
    return Call.updated_at.db_value(value)


def _update_params(transition: Transition, call_uuid: str) -> list:
    values = {
        "status": transition.to_status.value,
        "updated_at": _timestamp(utcnow()),
        "ringing_at": _timestamp(transition.at),
        "answered_at": _timestamp(transition.at),
        "ended_at": _timestamp(transition.at),
        "end_reason": transition.end_reason.value if transition.end_reason else None,
        "hangup_cause": transition.hangup_cause,
        "billsec": transition.billsec,
        "duration_sec": transition.duration_sec,
        "ended_at_upper_bound": transition.ended_at_upper_bound,
    }
    return [values[column] for column in _columns(transition.to_status)] + [call_uuid]


def status_entry(call_uuid: str, from_status: str, seq: int, transition: Transition) -> dict:
    detail = {"reason": transition.reason, **{k: v for k, v in transition.detail.items() if v is not None}}
    if transition.hangup_cause:
        detail["hangup_cause"] = transition.hangup_cause
    return {"call": call_uuid, "seq": seq, "kind": "status", "from_status": from_status,
            "to_status": transition.to_status.value, "detail": detail, "at": transition.at}


def log_entry(call_uuid: str, seq: int, kind: str, detail: dict, status: str | None = None,
              at: datetime | None = None) -> dict:
    """A non-status entry (a command sent, a media event) for a call's log."""
    return {"call": call_uuid, "seq": seq, "kind": kind, "from_status": status, "to_status": status,
            "detail": detail, "at": at or utcnow()}


Change = tuple[str, str, int, Transition]  # (call uuid, from status, log seq, transition)


def apply(changes: list[Change], logs: list[dict] = (), hooks: Iterable[Callable[[list[Change]], None]] = (),
          log_hooks: Iterable[Callable[[list[dict]], None]] = ()) -> None:
    """Apply the changes, append the ``logs`` entries, and run ``hooks`` (writes that must
    commit with the status change, such as the webhook outbox), all in one transaction.

    ``log_hooks`` get the ``logs`` entries, in the same transaction, before ``hooks``: an
    entry that announces something (a media session established) is older than a status
    change of the same batch, since the worker logs it only while the call is live."""
    if not changes and not logs:
        return
    db = database.obj
    with db.atomic():
        for call_uuid, _, _, transition in changes:
            db.execute_sql(_update_sql(transition.to_status, db.param), _update_params(transition, call_uuid))
        entries = [status_entry(*change) for change in changes] + list(logs)
        entries.sort(key=lambda entry: (entry["call"], entry["seq"]))
        CallEvent.insert_many(entries).execute()
        if logs:
            for hook in log_hooks:
                hook(list(logs))
        if changes:
            for hook in hooks:
                hook(changes)


def next_seq(call_uuid: str) -> int:
    last = CallEvent.select(CallEvent.seq).where(CallEvent.call == call_uuid).order_by(CallEvent.seq.desc()).first()
    return (last.seq + 1) if last else 1

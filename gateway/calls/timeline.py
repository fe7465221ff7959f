"""A call's timeline as people read it: its event log, one line per entry, offsets from
the call's creation, then its final state.  ``voicegw demo``, ``voicegw calls show`` and
``voicegw simulate-call`` print calls with it."""

from __future__ import annotations

from gateway.models import Call, CallEvent


def events_of(call: Call) -> list[CallEvent]:
    return list(CallEvent.select().where(CallEvent.call == call.uuid).order_by(CallEvent.seq))


def timeline(call: Call, events: list[CallEvent] | None = None) -> str:
    lines = [f"  {call.to_number}  uuid={call.uuid}"]
    for event in events if events is not None else events_of(call):
        offset = (event.at - call.created_at).total_seconds()
        if event.kind == "status":
            what = f"{event.from_status} -> {event.to_status}"
        else:
            what = event.detail.get("command") or event.detail.get("event") or event.detail.get("reason") or ""
        lines.append(f"    +{offset:6.3f}s  {event.kind:<8} {what:<32} {event.detail.get('reason', '')}".rstrip())
    lines.append(f"    final: status={call.status} end_reason={call.end_reason} cause={call.hangup_cause} "
                 f"billsec={call.billsec} duration={call.duration_sec}")
    if call.ended_at_upper_bound:
        lines.append("    ended while the gateway was not listening: end time, billsec and duration are upper bounds")
    return "\n".join(lines)

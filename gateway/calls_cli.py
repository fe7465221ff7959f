"""``voicegw calls …``: read calls, their event logs, and the inbound calls refused.

::

    voicegw calls list [--account A] [--status STATUS] [--direction inbound|outbound] [--limit 50]
    voicegw calls show UUID          (the call and its timeline, as ``voicegw demo`` prints it)
    voicegw calls refused [--account A] [--limit 50]

``list`` is newest first; a refused inbound call shows why in its REFUSED column.
``refused`` lists every inbound call the gateway refused unanswered, also those to numbers
nobody owns (which have no call row: no account to own one).  Every command takes
``--json``.  ``gateway.cli`` mounts these with :func:`add_subparsers`.
"""
from __future__ import annotations

from gateway import cli_common as cli
from gateway.cli_common import CommandError, Output
from gateway.calls.timeline import events_of, timeline
from gateway.domain import CALL_DIRECTIONS, CALL_STATUSES
from gateway.models import Account, Call, RefusedCall

MAX_LIMIT = 10_000


def add_subparsers(subparsers) -> None:
    """Add the ``calls`` command group."""
    group = cli.group(subparsers, "calls", "read calls, their event logs and refused inbound calls")
    p = cli.command(group, "list", calls_list, "list calls, newest first")
    p.add_argument("--account", help="account id or name")
    p.add_argument("--status", choices=CALL_STATUSES)
    p.add_argument("--direction", choices=CALL_DIRECTIONS)
    p.add_argument("--limit", type=int, default=50, help="at most this many (default 50)")
    p = cli.command(group, "show", calls_show, "show a call and its timeline")
    p.add_argument("uuid", help="the call's uuid")
    p = cli.command(group, "refused", calls_refused, "list inbound calls refused without an answer, newest first")
    p.add_argument("--account", help="account id or name")
    p.add_argument("--limit", type=int, default=50, help="at most this many (default 50)")


def _limit(value: int) -> int:
    if not 1 <= value <= MAX_LIMIT:
        raise CommandError(f"--limit must be between 1 and {MAX_LIMIT}")
    return value


def _refusal_doc(refused: RefusedCall | None) -> dict | None:
    if refused is None:
        return None
    return {"id": refused.id, "call_uuid": refused.call_uuid, "account_id": refused.account_id,
            "node": refused.node, "did": refused.did, "from_number": refused.from_number,
            "caller_id_name": refused.caller_id_name, "reason": refused.reason,
            "hangup_cause": refused.hangup_cause, "created_at": cli.iso(refused.created_at)}


def _call_doc(call: Call, refused: RefusedCall | None) -> dict:
    return {
        "uuid": call.uuid, "account_id": call.account_id, "direction": call.direction,
        "from_number": call.from_number, "to_number": call.to_number, "caller_id_name": call.caller_id_name,
        "status": call.status, "end_reason": call.end_reason, "hangup_cause": call.hangup_cause,
        "billsec": call.billsec, "duration_sec": call.duration_sec, "node": call.node, "surface": call.surface,
        "socket_url": call.socket_url, "webhook_url": call.webhook_url,
        "created_at": cli.iso(call.created_at), "ringing_at": cli.iso(call.ringing_at),
        "answered_at": cli.iso(call.answered_at), "ended_at": cli.iso(call.ended_at),
        "ended_at_upper_bound": call.ended_at_upper_bound,
        "refused": _refusal_doc(refused),
    }


def _refusals_of(call_uuids: list[str]) -> dict[str, RefusedCall]:
    if not call_uuids:
        return {}
    return {r.call_uuid: r for r in RefusedCall.select().where(RefusedCall.call_uuid.in_(call_uuids))}


def calls_list(args) -> Output:
    query = Call.select()
    if args.account:
        query = query.where(Call.account == cli.find_account(args.account).id)
    if args.status:
        query = query.where(Call.status == args.status)
    if args.direction:
        query = query.where(Call.direction == args.direction)
    calls = list(query.order_by(Call.created_at.desc(), Call.uuid).limit(_limit(args.limit)))
    refusals = _refusals_of([call.uuid for call in calls])
    rows = []
    for call in calls:
        refused = refusals.get(call.uuid)
        rows.append([call.uuid, cli.iso(call.created_at), str(call.account_id), call.direction, call.from_number,
                     call.to_number, call.status, call.end_reason or "-", call.hangup_cause or "-",
                     str(call.billsec if call.billsec is not None else "-"),
                     f"{refused.reason} ({refused.hangup_cause})" if refused else "-"])
    table = cli.table(["UUID", "CREATED", "ACCOUNT", "DIRECTION", "FROM", "TO", "STATUS", "END REASON", "CAUSE",
                    "BILLSEC", "REFUSED"], rows, "no calls")
    return Output({"calls": [_call_doc(call, refusals.get(call.uuid)) for call in calls]}, table)


def _event_doc(event) -> dict:
    return {"seq": event.seq, "at": event.at.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "kind": event.kind, "from_status": event.from_status, "to_status": event.to_status,
            "detail": event.detail}


def _refusal_text(refused: RefusedCall) -> str:
    account = f"account {refused.account_id}" if refused.account_id is not None else "no account owns the number"
    return (f"refused {cli.iso(refused.created_at)}: {refused.from_number} -> {refused.did} ({account}), "
            f"reason {refused.reason}, cause {refused.hangup_cause}")


def calls_show(args) -> Output:
    call_uuid = args.uuid.strip()
    call = Call.get_or_none(Call.uuid == call_uuid)
    refused = RefusedCall.select().where(RefusedCall.call_uuid == call_uuid).order_by(RefusedCall.id).first()
    if call is None:
        if refused is None:
            raise CommandError(f"no call {call_uuid!r} (see 'voicegw calls list')")
        return Output({"call": None, "events": [], "refused": _refusal_doc(refused)}, _refusal_text(refused))
    events = events_of(call)
    doc = {"call": _call_doc(call, refused), "events": [_event_doc(e) for e in events],
           "refused": _refusal_doc(refused)}
    lines = [f"call {call.uuid}: {call.direction} {call.from_number} -> {call.to_number}, account {call.account_id}"]
    if refused is not None:
        lines.append(_refusal_text(refused))
    lines.append(timeline(call, events))
    return Output(doc, "\n".join(lines))


def calls_refused(args) -> Output:
    query = RefusedCall.select()
    if args.account:
        query = query.where(RefusedCall.account == cli.find_account(args.account).id)
    refused = list(query.order_by(RefusedCall.created_at.desc(), RefusedCall.id.desc()).limit(_limit(args.limit)))
    names = {a.id: a.name for a in Account.select(Account.id, Account.name)
             .where(Account.id.in_({r.account_id for r in refused if r.account_id is not None}))}
    rows = [[cli.iso(r.created_at), r.call_uuid, r.did, r.from_number,
             f"{r.account_id} ({names.get(r.account_id, '?')})" if r.account_id is not None else "-",
             r.reason, r.hangup_cause] for r in refused]
    table = cli.table(["AT", "UUID", "DID", "FROM", "ACCOUNT", "REASON", "CAUSE"], rows, "no refused calls")
    return Output({"refused": [_refusal_doc(r) for r in refused]}, table)

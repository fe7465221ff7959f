"""Human decisions on campaign actions, and the do-not-call list.

::

    voicegw approvals list [--account ACCOUNT] [--status awaiting_approval|…|all]
    voicegw approvals show ACTION
    voicegw approvals approve ACTION --by NAME         execute it at once (start, pause, stop)
    voicegw approvals reject ACTION --by NAME --reason TEXT
    voicegw do-not-call add ACCOUNT NUMBER [--note …] | remove ACCOUNT NUMBER | list ACCOUNT

An API key only ever requests an action (``POST …/campaigns/:id/start|pause|stop``);
these commands, run by a person on the gateway's host, are where it is approved (the
dashboard's ``/voice-approvals`` is the other place). ``--by`` is recorded as the
approver. Every command takes ``--json`` (``gateway.cli_common``).
"""
from __future__ import annotations

from gateway import cli_common as cli
from gateway.cli_common import CommandError, Output
from gateway.dialer import approvals, contacts
from gateway.models import ACTION_STATUSES, CampaignAction


def add_subparsers(subparsers) -> None:
    group = cli.group(subparsers, "approvals", "approve or reject campaign actions that API keys requested")
    p = cli.command(group, "list", approvals_list, "list campaign actions (by default those awaiting approval)")
    p.add_argument("--account", help="account id or name")
    p.add_argument("--status", default="awaiting_approval", choices=(*ACTION_STATUSES, "all"))
    p = cli.command(group, "show", approvals_show,
                    "what an approver sees: campaign, agent, contacts not yet called, windows, estimated cost")
    p.add_argument("action", help="action id")
    p = cli.command(group, "approve", approvals_approve, "approve an action; it is executed at once")
    p.add_argument("action", help="action id")
    p.add_argument("--by", required=True, help="your name, recorded as the approver")
    p = cli.command(group, "reject", approvals_reject, "reject an action, with a reason")
    p.add_argument("action", help="action id")
    p.add_argument("--by", required=True, help="your name, recorded as the approver")
    p.add_argument("--reason", required=True)

    group = cli.group(subparsers, "do-not-call", "an account's do-not-call list (no campaign calls these numbers)")
    p = cli.command(group, "add", dnc_add, "add a number (its pending campaign contacts become do_not_call)")
    p.add_argument("account", help="account id or name")
    p.add_argument("number")
    p.add_argument("--note")
    p = cli.command(group, "remove", dnc_remove, "remove a number")
    p.add_argument("account", help="account id or name")
    p.add_argument("number")
    p = cli.command(group, "list", dnc_list, "list the numbers")
    p.add_argument("account", help="account id or name")


def _action(ref: str) -> CampaignAction:
    text = (ref or "").strip()
    action = CampaignAction.get_or_none(CampaignAction.id == int(text)) if text.isascii() and text.isdigit() \
        and len(text) < 19 else None
    if action is None:
        raise CommandError(f"no campaign action {ref!r} (see 'voicegw approvals list')")
    return action


def _doc(action: CampaignAction) -> dict:
    data = approvals.describe(action)
    for key in ("requested_at", "decided_at", "executed_at"):
        data[key] = cli.iso(data[key])
    data["history"] = [{"status": e.status, "by": e.by, "reason": e.reason, "at": cli.iso(e.at)}
                       for e in approvals.history(action)]
    return data


def _text(data: dict) -> str:
    campaign, window, cost = data["campaign"], data["calling_window"], data["estimated_cost"]
    agent = data["agent"]
    lines = [
        f"action {data['id']}: {data['kind']} campaign {campaign['id']} ({campaign['name']}), {data['status']}"
        + (f": {data['reason']}" if data["reason"] else ""),
        f"requested by {data['requested_by']} at {data['requested_at']}",
        f"campaign status {campaign['status']}" + (f" ({campaign['status_reason']})" if campaign["status_reason"]
                                                   else ""),
        f"agent {agent['key']} ({agent['name']})" if agent else "agent: deleted",
        f"contacts not yet called: {data['contacts_not_yet_called']} (all: {data['contacts'] or {}})",
        f"calling window: days {','.join(map(str, window['days']))} {window['start']}-{window['end']}, "
        f"{window['evaluated_in']}; fallback zone {window['timezone']}",
        f"estimated cost: {cost['amount']} {cost['currency']} ({cost['basis']}; "
        f"{cost['contacts_without_rate']} without a rate)",
        f"from {campaign['from_number']}, {campaign['calls_per_second']:g} calls/s, "
        f"{campaign['max_concurrent']} at once, {campaign['max_attempts']} attempt(s)",
        "history:",
    ]
    lines += [f"  {e['at']}  {e['status']:<18} {e['by']}" + (f": {e['reason']}" if e["reason"] else "")
              for e in data["history"]]
    return "\n".join(lines)


def approvals_list(args) -> Output:
    account_id = cli.find_account(args.account).id if args.account else None
    rows = approvals.listed(None if args.status == "all" else args.status, account_id)
    docs = [{"id": str(a.id), "account": a.account_id, "campaign": str(a.campaign_id), "kind": a.kind,
             "status": a.status, "requested_by": a.requested_by, "requested_at": cli.iso(a.created_at)}
            for a in rows]
    table = cli.table(["id", "account", "campaign", "kind", "status", "requested by", "at"],
                      [[d["id"], d["account"], d["campaign"], d["kind"], d["status"], d["requested_by"],
                        d["requested_at"]] for d in docs], "no actions")
    return Output({"actions": docs}, table)


def approvals_show(args) -> Output:
    data = _doc(_action(args.action))
    return Output(data, _text(data))


def approvals_approve(args) -> Output:
    action = _action(args.action)
    try:
        action = approvals.approve(action.id, args.by)
    except approvals.DecisionRefused as exc:
        raise CommandError(str(exc)) from None
    data = _doc(action)
    return Output(data, _text(data))


def approvals_reject(args) -> Output:
    action = _action(args.action)
    try:
        action = approvals.reject(action.id, args.by, args.reason)
    except approvals.DecisionRefused as exc:
        raise CommandError(str(exc)) from None
    data = _doc(action)
    return Output(data, _text(data))


def dnc_add(args) -> Output:
    account = cli.find_account(args.account)
    phone, added = contacts.block(account, args.number, args.note)
    return Output({"account": account.id, "number": phone, "added": added},
                  f"{phone} {'added to' if added else 'already on'} the do-not-call list of {cli.label(account)}")


def dnc_remove(args) -> Output:
    account = cli.find_account(args.account)
    phone, removed = contacts.unblock(account, args.number)
    if not removed:
        raise CommandError(f"{phone} is not on the do-not-call list of {cli.label(account)}")
    return Output({"account": account.id, "number": phone, "removed": True},
                  f"{phone} removed from the do-not-call list of {cli.label(account)}")


def dnc_list(args) -> Output:
    account = cli.find_account(args.account)
    rows = contacts.blocked(account)
    docs = [{"number": r.phone, "note": r.note, "added_at": cli.iso(r.created_at)} for r in rows]
    return Output({"account": account.id, "numbers": docs},
                  cli.table(["number", "note", "added"], [[d["number"], d["note"] or "", d["added_at"]] for d in docs],
                            "no numbers"))

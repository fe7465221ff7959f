"""``voicegw calls list|show|refused``, run in-process through the real ``voicegw`` parser,
on both databases; the calls and logs are written through the controller's write path."""
import argparse
import re
from datetime import datetime, timedelta, timezone

import pytest

from gateway.calls import store
from gateway.calls.inbound import InboundCall, InboundRefusal, record_refusal
from gateway.calls.states import CallView, EndReason, Status, Transition, channel_vanished
from gateway.calls.timeline import timeline
from gateway.cli import build_parser
from gateway.models import Account, Call
from cli_support import cli  # noqa: F401 -- fixture

T0 = datetime(2026, 3, 1, 12, 0, 0, tzinfo=timezone.utc)


def make_call(account, uuid, *, direction="outbound", to_number="+15550100001", created=T0, **fields):
    return Call.create(uuid=uuid, account=account, direction=direction, from_number="+15550009999",
                       to_number=to_number, node="fs", created_at=created, **fields)


def move(call, *steps):
    """Status changes and log entries, as the controller's worker writes them."""
    changes, logs, status, seq = [], [], call.status, store.next_seq(call.uuid)
    for step in steps:
        if isinstance(step, Transition):
            changes.append((call.uuid, status, seq, step))
            status = step.to_status.value
        else:
            kind, detail, at = step
            logs.append({**store.log_entry(call.uuid, seq, kind, detail, status), "at": at})
        seq += 1
    store.apply(changes, logs)
    return Call.get_by_id(call.uuid)


@pytest.fixture
def calls(database):
    """acme: an answered outbound call, and an inbound call its routing webhook refused;
    globex: a missed call; and a call to a number nobody owns."""
    acme, globex = Account.create(name="acme"), Account.create(name="globex")
    done = move(make_call(acme, "c-answered"),
                Transition(Status.RINGING, T0 + timedelta(seconds=1), "CHANNEL_PROGRESS"),
                Transition(Status.IN_PROGRESS, T0 + timedelta(seconds=3), "CHANNEL_ANSWER"),
                ("media", {"event": "session_established", "target": "ws://bot"}, T0 + timedelta(seconds=3.2)),
                ("command", {"command": "hangup", "cause": "NORMAL_CLEARING"}, T0 + timedelta(seconds=40)),
                Transition(Status.COMPLETED, T0 + timedelta(seconds=40), "CHANNEL_HANGUP_COMPLETE",
                           end_reason=EndReason.COMPLETED, hangup_cause="NORMAL_CLEARING", billsec=37,
                           duration_sec=40))
    refused_at = T0 + timedelta(minutes=5)
    refused = move(make_call(acme, "c-refused", direction="inbound", to_number="+14155550150", created=refused_at),
                   Transition(Status.RINGING, refused_at, "CHANNEL_PARK"),
                   ("inbound", {"event": "refused", "reason": "business_hours_closed", "cause": "CALL_REJECTED"},
                    refused_at + timedelta(seconds=1)),
                   Transition(Status.FAILED, refused_at + timedelta(seconds=1), "CHANNEL_HANGUP_COMPLETE",
                              end_reason=EndReason.REJECTED, hangup_cause="CALL_REJECTED", billsec=0, duration_sec=1))
    record_refusal(InboundCall("c-refused", "fs", "+14155550150", "+15557654321", "Jane"), acme.id,
                   InboundRefusal("business_hours_closed", "CALL_REJECTED"))
    missed = move(make_call(globex, "c-missed", created=T0 + timedelta(minutes=10)),
                  Transition(Status.RINGING, T0 + timedelta(minutes=10), "CHANNEL_PROGRESS"),
                  Transition(Status.MISSED, T0 + timedelta(minutes=11), "CHANNEL_HANGUP_COMPLETE",
                             end_reason=EndReason.NO_ANSWER, hangup_cause="NO_ANSWER", billsec=0, duration_sec=60))
    record_refusal(InboundCall("c-nobody", "fs", "+14155550199", "+15550000666", "Spam"), None,
                   InboundRefusal("unknown_number", "UNALLOCATED_NUMBER"))
    return {"acme": acme, "globex": globex, "answered": done, "refused": refused, "missed": missed}


def test_list_is_newest_first_and_shows_why_a_call_was_refused(cli, calls):
    out = cli("calls", "list")
    lines = out.splitlines()
    assert re.split(r"\s{2,}", lines[0]) == ["UUID", "CREATED", "ACCOUNT", "DIRECTION", "FROM", "TO", "STATUS",
                                             "END REASON", "CAUSE", "BILLSEC", "REFUSED"]
    assert [line.split()[0] for line in lines[1:]] == ["c-missed", "c-refused", "c-answered"]
    refused_line = next(line for line in lines if line.startswith("c-refused"))
    assert "failed" in refused_line and "rejected" in refused_line
    assert refused_line.endswith("business_hours_closed (CALL_REJECTED)")

    docs = cli.json("calls", "list")["calls"]
    assert [d["uuid"] for d in docs] == ["c-missed", "c-refused", "c-answered"]
    assert docs[1]["refused"]["reason"] == "business_hours_closed" and docs[2]["refused"] is None
    assert (docs[2]["status"], docs[2]["billsec"], docs[2]["answered_at"]) == ("completed", 37, "2026-03-01T12:00:03Z")


@pytest.mark.parametrize("argv, expected", [
    (("--account", "acme"), ["c-refused", "c-answered"]),
    (("--account", "globex"), ["c-missed"]),
    (("--status", "failed"), ["c-refused"]),
    (("--direction", "inbound"), ["c-refused"]),
    (("--account", "acme", "--direction", "outbound", "--status", "completed"), ["c-answered"]),
    (("--limit", "1"), ["c-missed"]),
    (("--status", "queued"), []),
])
def test_list_filters(cli, calls, argv, expected):
    assert [d["uuid"] for d in cli.json("calls", "list", *argv)["calls"]] == expected


def test_an_empty_list_says_so(cli, database):
    assert cli("calls", "list").strip() == "(no calls)"
    assert cli("calls", "refused").strip() == "(no refused calls)"


def test_show_prints_the_timeline_as_the_demo_does(cli, calls):
    out = cli("calls", "show", "c-answered")
    call = Call.get_by_id("c-answered")
    assert out.startswith("call c-answered: outbound +15550009999 -> +15550100001, account ")
    assert timeline(call) in out  # the demo's formatter, not a second one
    assert "+ 3.000s  status   ringing -> in_progress" in out
    assert "+ 3.200s  media    session_established" in out
    assert "+40.000s  command  hangup" in out
    assert "final: status=completed end_reason=completed cause=NORMAL_CLEARING billsec=37 duration=40" in out

    doc = cli.json("calls", "show", "c-answered")
    assert doc["call"]["uuid"] == "c-answered" and doc["refused"] is None
    assert [(e["seq"], e["kind"], e["to_status"]) for e in doc["events"]] == [
        (1, "status", "ringing"), (2, "status", "in_progress"), (3, "media", "in_progress"),
        (4, "command", "in_progress"), (5, "status", "completed")]
    assert doc["events"][2]["detail"] == {"event": "session_established", "target": "ws://bot"}
    assert doc["events"][0]["at"] == "2026-03-01T12:00:01.000Z"


def test_show_says_when_the_end_was_not_seen(cli, calls):
    """A call closed by the reconciliation (``states.channel_vanished``): its end time, billsec
    and duration are upper bounds, and ``show`` says so; a call that ended in sight does not."""
    gone_at = T0 + timedelta(minutes=30)
    move(make_call(calls["acme"], "c-gone"),
         Transition(Status.IN_PROGRESS, T0 + timedelta(seconds=2), "CHANNEL_ANSWER"),
         channel_vanished(CallView(Status.IN_PROGRESS, answered=True), T0, T0 + timedelta(seconds=2), gone_at))
    out = cli("calls", "show", "c-gone")
    assert "final: status=completed end_reason=completed cause=CHANNEL_GONE billsec=1798 duration=1800" in out
    assert "ended while the gateway was not listening: end time, billsec and duration are upper bounds" in out
    doc = cli.json("calls", "show", "c-gone")["call"]
    assert (doc["ended_at"], doc["ended_at_upper_bound"]) == ("2026-03-01T12:30:00Z", True)
    assert cli.json("calls", "show", "c-answered")["call"]["ended_at_upper_bound"] is False
    assert "upper bounds" not in cli("calls", "show", "c-answered")


def test_show_a_refused_call_says_why(cli, calls):
    out = cli("calls", "show", "c-refused")
    assert re.search(r"^refused \S+Z: \+15557654321 -> \+14155550150 \(account \d+\), "
                     r"reason business_hours_closed, cause CALL_REJECTED$", out, re.M), out
    assert "inbound  refused" in out and "business_hours_closed" in out
    doc = cli.json("calls", "show", "c-refused")
    assert doc["refused"]["hangup_cause"] == "CALL_REJECTED" and doc["call"]["refused"] == doc["refused"]


def test_show_a_call_to_a_number_nobody_owns(cli, calls):
    out = cli("calls", "show", "c-nobody")
    assert "+15550000666 -> +14155550199 (no account owns the number)" in out
    assert "reason unknown_number, cause UNALLOCATED_NUMBER" in out
    doc = cli.json("calls", "show", "c-nobody")
    assert doc["call"] is None and doc["events"] == [] and doc["refused"]["account_id"] is None


def test_refused_lists_every_refusal_with_its_account(cli, calls):
    out = cli("calls", "refused")
    lines = out.splitlines()
    assert lines[0].split() == ["AT", "UUID", "DID", "FROM", "ACCOUNT", "REASON", "CAUSE"]
    assert [line.split()[1] for line in lines[1:]] == ["c-nobody", "c-refused"]
    assert f"{calls['acme'].id} (acme)" in lines[2] and lines[1].split()[4] == "-"
    assert [r["call_uuid"] for r in cli.json("calls", "refused", "--account", "acme")["refused"]] == ["c-refused"]
    assert cli.json("calls", "refused", "--account", "globex")["refused"] == []


@pytest.mark.parametrize("argv, message", [
    (("calls", "show", "no-such-call"), r"no call 'no-such-call'"),
    (("calls", "list", "--account", "nobody"), r"no account 'nobody'"),
    (("calls", "refused", "--account", "nobody"), r"no account 'nobody'"),
    (("calls", "list", "--limit", "0"), r"--limit must be between 1 and 10000"),
    (("calls", "refused", "--limit", "100001"), r"--limit must be between 1 and 10000"),
])
def test_bad_input_is_one_line_and_status_2(cli, calls, argv, message):
    err = cli(*argv, status=2)
    assert err.startswith("voicegw: error: ") and err.count("\n") == 1 and "Traceback" not in err
    assert re.search(message, err), err


@pytest.mark.parametrize("argv", [
    ("calls", "list", "--status", "answered"),
    ("calls", "list", "--direction", "sideways"),
    ("calls", "list", "--limit", "ten"),
    ("calls", "show"),
])
def test_malformed_arguments_are_refused_by_the_parser(cli, argv, capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.parser.parse_args(argv)
    assert exit_info.value.code == 2
    assert "usage:" in capsys.readouterr().err


def test_the_command_is_mounted_in_voicegw():
    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    assert set(sub.choices["calls"]._subparsers._group_actions[0].choices) == {"list", "show", "refused"}

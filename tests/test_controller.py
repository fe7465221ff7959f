"""The call controller against the simulator, over real TCP, on SQLite and PostgreSQL."""

import time

import gevent
import pytest

from gateway.calls.controller import CallController, CallError
from gateway.calls.states import FINAL, Status
from gateway.config import NodeConfig
from gateway.models import Account, Call, CallEvent
from gateway.simulator import Simulator

CALLER = "+15550009999"


def make_controller(sim, **kwargs):
    node = NodeConfig(f"127.0.0.1:{sim.port}", "127.0.0.1", sim.port, "ClueCon")
    controller = CallController([node], command_timeout=2.0, **kwargs)
    controller.start()
    assert controller.wait_connected(5), "controller did not connect to the simulator"
    return controller


@pytest.fixture
def controller(database, sim):
    controller = make_controller(sim)
    yield controller
    controller.stop()


@pytest.fixture
def account(database):
    return Account.create(name="acme")


def wait_until(predicate, timeout: float):
    """For state the simulator does not see change (the node's, here): look every 10 ms."""
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not met in time"
        gevent.sleep(0.01)


def status_log(call_uuid):
    return [(e.from_status, e.to_status) for e in
            CallEvent.select().where(CallEvent.call == call_uuid, CallEvent.kind == "status").order_by(CallEvent.seq)]


def test_answered_call_hung_up_by_command_completes(controller, sim, account):
    call = controller.originate(account.id, "+15550100001", CALLER, "Acme Support")
    assert Call.get_by_id(call.uuid).status == "queued"
    assert controller.wait_status(call.uuid, [Status.IN_PROGRESS], 5) is Status.IN_PROGRESS
    channel = sim.channels[call.uuid]
    assert channel.variables["origination_caller_id_name"] == "Acme Support"
    gevent.sleep(1.1)  # let billable time accrue: billsec is whole seconds
    controller.hangup(call.uuid)
    assert controller.wait_status(call.uuid, FINAL, 5) is Status.COMPLETED
    row = Call.get_by_id(call.uuid)
    assert (row.status, row.end_reason, row.hangup_cause) == ("completed", "completed", "NORMAL_CLEARING")
    assert row.billsec >= 1 and row.duration_sec >= row.billsec
    assert row.answered_at is not None and row.ended_at >= row.answered_at
    assert status_log(call.uuid)[-1] == ("in_progress", "completed")
    assert [e.kind for e in CallEvent.select().where(CallEvent.call == call.uuid)].count("command") == 1


@pytest.mark.parametrize("number, status, reason, cause", [
    ("+15550100486", "failed", "busy", "USER_BUSY"),
    ("+15550100603", "failed", "rejected", "CALL_REJECTED"),
    ("+15550100480", "missed", "no_answer", "NO_ANSWER"),
    ("+15550100404", "failed", "failed", "UNALLOCATED_NUMBER"),
    ("+15550100503", "failed", "failed", "NORMAL_TEMPORARY_FAILURE"),
])
def test_unanswered_outcomes(controller, account, number, status, reason, cause):
    call = controller.originate(account.id, number, CALLER, timeout=1)
    controller.wait_status(call.uuid, FINAL, 10)
    row = Call.get_by_id(call.uuid)
    assert (row.status, row.end_reason, row.hangup_cause) == (status, reason, cause)
    assert row.billsec == 0 and row.answered_at is None
    if reason == "no_answer":
        assert status_log(call.uuid) == [("queued", "ringing"), ("ringing", "missed")]


def test_unknown_carrier_gateway_fails_without_a_channel(database, sim, account):
    controller = make_controller(sim, carrier_gateway="nosuchtrunk")
    try:
        call = controller.originate(account.id, "+15550100001", CALLER)
        controller.wait_status(call.uuid, FINAL, 5)
        row = Call.get_by_id(call.uuid)
        assert (row.status, row.end_reason, row.hangup_cause) == ("failed", "failed", "INVALID_GATEWAY")
    finally:
        controller.stop()


def test_transfer_moves_the_channel_into_the_dialplan(controller, sim, account):
    call = controller.originate(account.id, "+15550100001", CALLER)
    controller.wait_status(call.uuid, [Status.IN_PROGRESS], 5)
    controller.transfer(call.uuid, "1000")
    sim.wait_for(lambda: sim.channels[call.uuid].destination_number == "1000", timeout=5)
    assert "/gateway_transfer/XML" in sim.channels[call.uuid].variables["transfer_history"]
    controller.transfer(call.uuid, "sip:alice@pbx.example.com")
    sim.wait_for(lambda: sim.channels[call.uuid].destination_number == "sip_uri", timeout=5)
    assert sim.channels[call.uuid].variables["gateway_transfer_uri"] == "sip:alice@pbx.example.com"
    with pytest.raises(CallError) as bad:
        controller.transfer(call.uuid, "1000,user/evil")
    assert bad.value.code == 400
    controller.hangup(call.uuid)
    controller.wait_status(call.uuid, FINAL, 5)


def test_commands_on_unknown_and_ended_calls_are_clear_errors(controller, account):
    with pytest.raises(CallError) as unknown:
        controller.hangup("00000000-0000-0000-0000-000000000000")
    assert unknown.value.code == 404
    call = controller.originate(account.id, "+15550100486", CALLER)
    controller.wait_status(call.uuid, FINAL, 5)
    with pytest.raises(CallError) as ended:
        controller.hangup(call.uuid)
    assert ended.value.code == 409 and "ended" in str(ended.value)


def test_far_end_hangup_completes_the_call(controller, sim, account):
    call = controller.originate(account.id, "+15550100001", CALLER)
    controller.wait_status(call.uuid, [Status.IN_PROGRESS], 5)
    sim.far_end_hangup(call.uuid)
    assert controller.wait_status(call.uuid, FINAL, 5) is Status.COMPLETED


def test_simulator_restart_mid_call_is_reconciled(controller, sim, account, caplog):
    caplog.set_level("INFO", logger="gateway.esl.node")
    call = controller.originate(account.id, "+15550100001", CALLER)
    controller.wait_status(call.uuid, [Status.IN_PROGRESS], 5)
    node = next(iter(controller.nodes.values()))
    generation = node.generation
    sim.stop()  # a FreeSWITCH crash: every channel is gone
    sim.start()
    assert controller.wait_status(call.uuid, FINAL, 10) is Status.COMPLETED
    assert node.generation == generation + 1
    messages = [r.getMessage() for r in caplog.records]
    assert any(m.startswith(f"FreeSWITCH {node.name} link lost") for m in messages), messages
    assert any(m.startswith(f"FreeSWITCH {node.name} reconnected (link {node.generation}): version 1.10.12")
               for m in messages), messages
    row = Call.get_by_id(call.uuid)
    assert row.hangup_cause == "CHANNEL_GONE" and row.end_reason == "completed"
    # the link is usable again
    again = controller.originate(account.id, "+15550100001", CALLER)
    controller.wait_status(again.uuid, [Status.IN_PROGRESS], 5)
    controller.hangup(again.uuid)
    controller.wait_status(again.uuid, FINAL, 5)


def test_reconcile_reattaches_live_calls_after_controller_restart(database, sim, account):
    first = make_controller(sim)
    call = first.originate(account.id, "+15550100001", CALLER)
    first.wait_status(call.uuid, [Status.IN_PROGRESS], 5)
    first.stop()
    second = make_controller(sim)
    try:
        second.hangup(call.uuid)
        assert second.wait_status(call.uuid, FINAL, 5) is Status.COMPLETED
        assert Call.get_by_id(call.uuid).hangup_cause == "NORMAL_CLEARING"
    finally:
        second.stop()


def test_hundred_concurrent_calls_all_reach_a_final_state(controller, sim, account):
    numbers = [f"+1555020{i:04d}" for i in range(100)]
    calls = [controller.originate(account.id, n, CALLER, timeout=2) for n in numbers]
    for call in calls:
        controller.wait_status(call.uuid, [Status.IN_PROGRESS, *FINAL], 15)
    for call in calls:
        if controller.live.get(call.uuid) and controller.live[call.uuid].status is Status.IN_PROGRESS:
            controller.hangup(call.uuid)
    for call in calls:
        controller.wait_status(call.uuid, FINAL, 15)
    statuses = [row.status for row in Call.select()]
    assert len(statuses) == 100 and set(statuses) <= {"completed", "missed", "failed"}
    assert not controller.live


def test_controller_started_before_freeswitch_connects_once_it_is_up(database, account):
    sim = Simulator(port=0, answer_delay=0.05)
    sim.start()
    port = sim.port
    sim.stop()  # FreeSWITCH is down when the gateway starts
    controller = CallController([NodeConfig("fs", "127.0.0.1", port, "ClueCon")], command_timeout=2.0)
    controller.start()
    try:
        with pytest.raises(CallError) as down:
            controller.originate(account.id, "+15550100001", CALLER)
        assert down.value.code == 503
        restarted = Simulator(port=port, answer_delay=0.05)
        restarted.start()
        try:
            assert controller.wait_connected(10)
            call = controller.originate(account.id, "+15550100001", CALLER)
            controller.wait_status(call.uuid, [Status.IN_PROGRESS], 5)
        finally:
            restarted.stop()
    finally:
        controller.stop()


def test_wrong_password_is_reported_and_retried(database, sim):
    controller = CallController([NodeConfig("fs", "127.0.0.1", sim.port, "wrong")], command_timeout=2.0)
    controller.start()
    try:
        node = controller.nodes["fs"]
        wait_until(lambda: node.last_error is not None, timeout=5)
        assert "password" in node.last_error
        assert not node.connected.is_set()
    finally:
        controller.stop()


def test_event_hooks_see_every_event_of_a_live_call_in_order(controller, sim, account):
    seen = []
    controller.event_hooks.append(lambda call_uuid, event: seen.append((call_uuid, event.name)))
    call = controller.originate(account.id, "+15550100001", CALLER)
    controller.wait_status(call.uuid, [Status.IN_PROGRESS], 5)
    sim.press(call.uuid, "7")
    controller.hangup(call.uuid)
    controller.wait_status(call.uuid, FINAL, 5)
    names = [name for uuid, name in seen if uuid == call.uuid]
    assert names.index("CHANNEL_ANSWER") < names.index("DTMF") < names.index("CHANNEL_HANGUP_COMPLETE")


def test_execute_runs_an_application_and_its_completion_is_awaited(controller, sim, account):
    call = controller.originate(account.id, "+15550100001", CALLER)
    controller.wait_status(call.uuid, [Status.IN_PROGRESS], 5)
    done = controller.expect(call.uuid, lambda e: e.name == "CHANNEL_EXECUTE_COMPLETE"
                             and e.get("Application") == "play_and_get_digits")
    app_uuid = controller.execute(
        call.uuid, "play_and_get_digits", "1 1 1 3000 # tone_stream://%(200,0,440) silence_stream://100 choice \\d")
    sim.wait_event(call.uuid, "CHANNEL_EXECUTE", timeout=5)
    sim.press(call.uuid, "1")
    event = done.get(timeout=10)
    assert event.get("Application-UUID") == app_uuid
    assert event.get("variable_choice") == "1"
    ended = controller.expect(call.uuid, lambda e: False)
    controller.hangup(call.uuid)
    with pytest.raises(CallError):
        ended.get(timeout=5)


def test_log_times_follow_log_order_when_the_switch_clock_is_behind(controller, sim, account, monkeypatch):
    """Status entries carry FreeSWITCH's event time, other entries the gateway's clock: with
    the switch's clock 2 s behind, the hangup command (logged first) would otherwise seem to
    come 2 s after the hangup it caused."""
    from gateway.simulator import core

    real_now = core.now_us
    monkeypatch.setattr(core, "now_us", lambda: real_now() - 2_000_000)
    call = controller.originate(account.id, "+15550100001", CALLER)
    controller.wait_status(call.uuid, [Status.IN_PROGRESS], 5)
    controller.hangup(call.uuid)
    controller.wait_status(call.uuid, FINAL, 5)
    controller.flush()
    entries = list(CallEvent.select().where(CallEvent.call == call.uuid).order_by(CallEvent.seq))
    assert [e.kind for e in entries].count("command") == 1
    times = [e.at for e in entries]
    assert times == sorted(times), [(e.seq, e.kind, e.at.isoformat()) for e in entries]
    row = Call.get_by_id(call.uuid)
    assert row.ended_at >= row.answered_at

"""Admission control against the simulator over real ESL: the switch's own limits, the
gateway pacing every originate to them, and nothing originated before a node's globals
and limits are known.  On SQLite and PostgreSQL."""

from __future__ import annotations

import argparse
import uuid as uuidlib
from pathlib import Path

import gevent
import pytest

from api_support import *  # noqa: F401,F403 -- fixtures (gw, client, key_a); ``sim`` is ours
from api_support import FINAL, Status, headers
from gateway.calls.controller import CallController
from gateway.config import NodeConfig
from gateway.models import Account, Call, CallEvent, PhoneNumber
from gateway.simulator import Simulator
from gateway.simulator.cli import add_subparser
from gateway.simulator.simulator import SessionRefused
from sim_support import RawClient

CALLER = "+15550009999"
DIALPLAN = Path(__file__).resolve().parents[1] / "dialplan"
REFUSED = "-ERR DESTINATION_OUT_OF_ORDER\n"


@pytest.fixture
def sim():
    """The API tests' switch (``gw`` connects to it): a small budget, so pacing shows."""
    simulator = Simulator(port=0, answer_delay=0.02, heartbeat_interval=0, remote_hangup_delay=0.05,
                          sessions_per_second=6)
    simulator.start()
    yield simulator
    simulator.stop()


@pytest.fixture
def make_sim():
    sims = []

    def make(**kwargs):
        kwargs = {"answer_delay": 0.02, "heartbeat_interval": 0, "remote_hangup_delay": 0.05, **kwargs}
        simulator = Simulator(port=0, **kwargs)
        simulator.start()
        sims.append(simulator)
        return simulator

    yield make
    for simulator in sims:
        simulator.stop()


@pytest.fixture
def make_controller(database):
    controllers = []

    def make(sim, connect=True, **kwargs):
        controller = CallController([NodeConfig("fs1", "127.0.0.1", sim.port, "ClueCon")],
                                    command_timeout=2.0, **kwargs)
        controller.start()
        controllers.append(controller)
        if connect:
            assert controller.wait_connected(5), "the controller did not connect to the simulator"
        return controller

    yield make
    for controller in controllers:
        controller.stop()


@pytest.fixture
def esl(make_sim):
    clients = []

    def connect(sim, events="CHANNEL_CREATE BACKGROUND_JOB HEARTBEAT"):
        client = RawClient(sim.port)
        client.auth()
        client.command(f"event plain {events}")
        clients.append(client)
        return client

    yield connect
    for client in clients:
        client.close()


@pytest.fixture
def account(database):
    return Account.create(name="acme")


def completing(i: int) -> str:
    """A number whose far end answers, then hangs up by itself (simulator rule ``200``)."""
    return f"+1555{i:04d}200"


def wait_until(predicate, timeout: float = 10.0):
    with gevent.Timeout(timeout, AssertionError("condition not met in time")):
        while not predicate():
            gevent.sleep(0.01)


def admission_log(call_uuid: str) -> list[dict]:
    return [e.detail for e in CallEvent.select().where(CallEvent.call == call_uuid, CallEvent.kind == "admission")
            .order_by(CallEvent.seq)]


def simulator_command() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser()
    add_subparser(parser.add_subparsers())
    return parser


def next_second(sim) -> None:
    """Wait for the simulator's timer to refill its session budget."""
    ticks = sim.throttle.ticks
    sim.wait_for(lambda: sim.throttle.ticks > ticks, timeout=3)


# -- the switch alone ------------------------------------------------------------------------------

def test_the_switch_refuses_the_30th_session_start_of_a_second_with_no_channel(make_sim, esl):
    """FreeSWITCH takes one from its budget of 30 before checking it (``--runtime.sps <= 0``
    refuses), so 29 sessions start in a second and the 30th is refused."""
    sim = make_sim()
    c = esl(sim)
    uuids = [str(uuidlib.uuid4()) for _ in range(31)]
    jobs = [str(uuidlib.uuid4()) for _ in uuids]
    next_second(sim)
    c.send_raw(b"".join(
        f"bgapi originate {{origination_uuid={u}}}sofia/gateway/carrier/+1555010{i:04d} &park()\n"
        f"Job-UUID: {j}\n\n".encode() for i, (u, j) in enumerate(zip(uuids, jobs))))
    assert all(c.reply().reply_text == f"+OK Job-UUID: {j}" for j in jobs)
    done = c.wait_for(lambda: len([e for e in c.events if e.name == "BACKGROUND_JOB"]) == 31 and c.events)
    bodies = {e.get("Job-UUID"): e.body for e in done if e.name == "BACKGROUND_JOB"}
    assert [bodies[j] for j in jobs] == [f"+OK {u}\n" for u in uuids[:29]] + [REFUSED, REFUSED]
    created = {e.uuid for e in c.events if e.name == "CHANNEL_CREATE"}
    assert set(uuids[:29]) <= created and not created & set(uuids[29:])
    assert not set(uuids[29:]) & set(sim.history)
    # refused requests took from the budget too: FreeSWITCH's sps_last counts them
    next_second(sim)
    assert c.api("fsctl last_sps") == "+OK last sessions per second: 31\n"
    assert "31 session(s) per Sec out of max 30, peak 31," in c.api("status")
    assert c.api("fsctl sps") == "+OK sessions per second: 30\n"


def test_limits_are_configurable_and_reported_like_freeswitch(make_sim, esl):
    sim = make_sim(sessions_per_second=120, max_sessions=250, heartbeat_interval=0)
    c = esl(sim)
    status = c.api("status")
    assert "session(s) per Sec out of max 120, peak" in status and "\n250 session(s) max\n" in status
    assert c.api("fsctl max_sessions") == "+OK max sessions: 250\n"
    sim.fire_heartbeat()
    beat = c.wait_event("HEARTBEAT")
    assert (beat.get("Max-Sessions"), beat.get("Session-Per-Sec")) == ("250", "120")  # idle: the whole budget
    assert c.api("fsctl sps 40") == "+OK sessions per second: 40\n"
    assert c.api("fsctl sps nonsense") == "+OK sessions per second: 40\n"  # atoi: 0 only reads
    assert "out of max 40," in c.api("status")
    assert c.api("fsctl").startswith("-USAGE: [api_expansion")
    assert c.api("fsctl bogus").startswith("-ERR Invalid command\nUSAGE: fsctl [api_expansion")


def test_max_sessions_counts_both_loopback_legs_and_inbound_calls(make_sim, esl):
    sim = make_sim(max_sessions=3)
    c = esl(sim)
    first = c.api("originate {originate_timeout=1}loopback/9000/default &park()", timeout=5)
    assert first.startswith("+OK ") and len(sim.channels) == 2  # its A and B legs
    # the next A leg fits, its B leg does not: nothing answers the A leg until the timeout
    assert c.api("originate {originate_timeout=1}loopback/9001/default &park()", timeout=5) == "-ERR NO_ANSWER\n"
    assert not any(ch.name == "loopback/9001-b" for ch in sim.history.values())
    sim.wait_for(lambda: len(sim.channels) == 2)
    sim.inject_inbound("+14155550100", "+12125550100")
    assert len(sim.channels) == 3
    assert c.api("originate sofia/gateway/carrier/+15550100001 &park()") == REFUSED
    with pytest.raises(SessionRefused):
        sim.inject_inbound("+14155550100", "+12125550101")
    assert len(sim.channels) == 3


@pytest.mark.parametrize("argv, limits", [
    ([], (30, 1000)), (["--sps", "7", "--max-sessions", "9"], (7, 9)),
])
def test_the_simulator_command_takes_the_limits(argv, limits):
    args = simulator_command().parse_args(["simulator", *argv])
    assert (args.sps, args.max_sessions) == limits


@pytest.mark.parametrize("argv", [["--sps", "0"], ["--sps", "x"], ["--max-sessions", "-1"], ["--sps", "1.5"]])
def test_the_simulator_command_refuses_bad_limits(argv, capsys):
    with pytest.raises(SystemExit):
        simulator_command().parse_args(["simulator", *argv])
    assert "expected a whole number of at least 1" in capsys.readouterr().err


# -- the gateway pacing ----------------------------------------------------------------------------

def test_a_burst_of_calls_all_complete_started_in_placing_order(make_sim, make_controller, account):
    sim = make_sim()
    controller = make_controller(sim)
    calls = [controller.originate(account.id, completing(i), CALLER) for i in range(100)]
    for call in calls:
        controller.wait_status(call.uuid, FINAL, 30)
    assert [Call.get_by_id(c.uuid).status for c in calls] == ["completed"] * 100
    placed = [c.uuid for c in calls]
    assert [u for u in sim.history if u in set(placed)] == placed
    assert not CallEvent.select().where(CallEvent.kind == "admission").exists()  # never refused
    next_second(sim)
    assert sim.throttle.peak <= 26  # the most started in any of the switch's seconds


def test_calls_placed_through_the_api_are_paced_too(client, gw, sim, key_a):
    placed = []
    for i in range(12):
        response = client.post("/api/calls", json={"destination_number": f"+1212{500 + i}0200"},
                               headers=headers(key_a))
        assert response.status_code == 200, response.json
        placed.append(response.json["call_uuid"])
    for call_uuid in placed:
        gw.controller.wait_status(call_uuid, FINAL, 30)
    assert {client.get(f"/api/calls/{u}", headers=headers(key_a)).json["status"] for u in placed} == {"completed"}
    assert [u for u in sim.history if u in set(placed)] == placed
    assert not CallEvent.select().where(CallEvent.kind == "admission").exists()  # paced: never refused
    [pacer] = gw.controller.pacers.values()
    assert pacer.admission.rate == 4  # the switch's 6 a second, less the one it never starts and the headroom


def test_calls_over_max_sessions_stay_queued_then_fail_with_the_reason(make_sim, make_controller, account):
    sim = make_sim(max_sessions=2)  # the gateway keeps one session of headroom: it starts one call at a time
    controller = make_controller(sim, admission_wait=2)
    first = controller.originate(account.id, "+15550100001", CALLER)
    assert controller.wait_status(first.uuid, [Status.IN_PROGRESS], 5) is Status.IN_PROGRESS
    second = controller.originate(account.id, "+15550100002", CALLER)
    third = controller.originate(account.id, "+15550100003", CALLER)
    controller.flush()
    assert [Call.get_by_id(c.uuid).status for c in (second, third)] == ["queued", "queued"]
    controller.hangup(first.uuid)
    assert controller.wait_status(second.uuid, [Status.IN_PROGRESS], 5) is Status.IN_PROGRESS
    assert controller.wait_status(third.uuid, FINAL, 10) is Status.FAILED
    row = Call.get_by_id(third.uuid)
    assert (row.end_reason, row.hangup_cause) == ("failed", "SWITCH_CONGESTION")
    [reason] = admission_log(third.uuid)
    assert reason["error"].startswith("not started within 2 s on FreeSWITCH node fs1: 1 sessions up")
    assert third.uuid not in sim.history  # never sent to the switch
    controller.hangup(second.uuid)
    assert controller.wait_status(second.uuid, FINAL, 5) is Status.COMPLETED


def test_inbound_calls_count_against_the_sessions(make_sim, make_controller, account):
    sim = make_sim(max_sessions=3, dialplan_dir=str(DIALPLAN))  # the gateway keeps two sessions up
    controller = make_controller(sim, admission_wait=30)
    PhoneNumber.create(account=account, e164="+14155550100", route="bot", socket_url="wss://bot.example.com/a")
    inbound = sim.inject_inbound("+14155550100", "+15557654321")
    sim.wait_for(lambda: Call.get_or_none(Call.uuid == inbound) is not None)
    assert controller.wait_status(inbound, [Status.IN_PROGRESS], 5) is Status.IN_PROGRESS
    first = controller.originate(account.id, "+15550100001", CALLER)
    second = controller.originate(account.id, "+15550100002", CALLER)
    assert controller.wait_status(first.uuid, [Status.IN_PROGRESS], 5) is Status.IN_PROGRESS
    controller.flush()
    assert Call.get_by_id(second.uuid).status == "queued"
    sim.far_end_hangup(inbound)
    assert controller.wait_status(second.uuid, [Status.IN_PROGRESS], 5) is Status.IN_PROGRESS


def test_hanging_up_a_queued_call_cancels_it_before_it_is_sent(make_sim, make_controller, account):
    sim = make_sim(max_sessions=2)
    controller = make_controller(sim, admission_wait=30)
    first = controller.originate(account.id, "+15550100001", CALLER)
    controller.wait_status(first.uuid, [Status.IN_PROGRESS], 5)
    queued = controller.originate(account.id, "+15550100002", CALLER)
    controller.hangup(queued.uuid)
    assert controller.wait_status(queued.uuid, FINAL, 5) is Status.FAILED
    assert Call.get_by_id(queued.uuid).end_reason == "canceled"
    controller.hangup(first.uuid)
    controller.wait_status(first.uuid, FINAL, 5)
    controller.flush()
    assert queued.uuid not in sim.history


def test_calls_still_queued_when_the_gateway_stops_fail_with_the_reason(make_sim, make_controller, account):
    sim = make_sim(max_sessions=2)
    controller = make_controller(sim, admission_wait=30)
    first = controller.originate(account.id, "+15550100001", CALLER)
    controller.wait_status(first.uuid, [Status.IN_PROGRESS], 5)
    queued = controller.originate(account.id, "+15550100002", CALLER)
    controller.stop()
    row = Call.get_by_id(queued.uuid)
    assert (row.status, row.hangup_cause) == ("failed", "SWITCH_CONGESTION")
    assert admission_log(queued.uuid) == [{"error": "not started: the gateway stopped while it waited for its turn"}]


def test_a_throttle_refusal_is_retried_and_the_calls_complete(make_sim, make_controller, account):
    sim = make_sim()
    controller = make_controller(sim, admission_wait=30)  # it learnt 30 sessions per second
    assert controller.nodes["fs1"].limits.sessions_per_second == 30
    sim.run_api("fsctl", "sps 3")  # from its next second on, the switch starts 2 a second
    next_second(sim)
    calls = [controller.originate(account.id, completing(i), CALLER) for i in range(8)]
    for call in calls:
        controller.wait_status(call.uuid, FINAL, 30)
    assert [Call.get_by_id(c.uuid).status for c in calls] == ["completed"] * 8
    retried = [c.uuid for c in calls if admission_log(c.uuid)]
    assert retried and all("retried" in admission_log(u)[0]["note"] for u in retried)
    placed = [c.uuid for c in calls]
    assert [u for u in sim.history if u in set(placed)] == placed


def test_a_call_the_switch_keeps_refusing_fails_once_its_wait_is_over(make_sim, make_controller, account):
    sim = make_sim()
    controller = make_controller(sim, admission_wait=1.5)
    sim.run_api("fsctl", "sps 1")  # a budget of one: FreeSWITCH starts nothing
    next_second(sim)
    call = controller.originate(account.id, "+15550100001", CALLER)
    assert controller.wait_status(call.uuid, FINAL, 10) is Status.FAILED
    assert Call.get_by_id(call.uuid).hangup_cause == "SWITCH_CONGESTION"
    log = admission_log(call.uuid)
    assert "retried" in log[0]["note"]
    assert "refused to start it" in log[-1]["error"] and "DESTINATION_OUT_OF_ORDER" in log[-1]["error"]


def test_a_queued_call_survives_a_switch_restart_and_starts_on_the_new_link(make_sim, make_controller, account):
    sim = make_sim(max_sessions=2)
    controller = make_controller(sim, admission_wait=20)
    first = controller.originate(account.id, "+15550100001", CALLER)
    controller.wait_status(first.uuid, [Status.IN_PROGRESS], 5)
    waiting = controller.originate(account.id, "+15550100002", CALLER)
    sim.stop()  # the first call's channel vanishes with the switch
    sim.start()
    assert controller.wait_status(first.uuid, FINAL, 10) is Status.COMPLETED
    assert Call.get_by_id(first.uuid).hangup_cause == "CHANNEL_GONE"
    assert controller.wait_status(waiting.uuid, [Status.IN_PROGRESS], 10) is Status.IN_PROGRESS
    assert controller.nodes["fs1"].generation == 2


# -- nothing before the node's globals are known -----------------------------------------------------

def test_a_call_placed_right_at_connect_uses_the_configured_carrier(make_sim, make_controller, account):
    sim = make_sim(gateways={"acme-trunk": "127.0.0.1:5060"}, write_delay=0.1)
    sim.global_vars["gateway_carrier"] = "acme-trunk"
    controller = make_controller(sim, connect=False)
    assert controller.wait_connected(10)
    call = controller.originate(account.id, "+15550100001", CALLER)
    assert controller.wait_status(call.uuid, [Status.IN_PROGRESS, *FINAL], 10) is Status.IN_PROGRESS
    assert sim.gateway_calls == {"acme-trunk": 1}

    # the switch comes back with its trunk renamed: the first call after the reconnect uses the new name
    node = controller.nodes["fs1"]
    sim.stop()
    wait_until(lambda: not node.connected.is_set())
    sim.gateways = {"beta-trunk": "127.0.0.1:5060"}
    sim.global_vars["gateway_carrier"] = "beta-trunk"
    sim.start()
    wait_until(lambda: node.connected.is_set())
    again = controller.originate(account.id, "+15550100002", CALLER)
    assert controller.wait_status(again.uuid, [Status.IN_PROGRESS, *FINAL], 10) is Status.IN_PROGRESS
    assert sim.gateway_calls == {"acme-trunk": 1, "beta-trunk": 1}


def test_limits_are_learnt_at_every_connect(make_sim, make_controller):
    sim = make_sim(sessions_per_second=11, max_sessions=21)
    controller = make_controller(sim)
    node = controller.nodes["fs1"]
    assert (node.limits.sessions_per_second, node.limits.max_sessions) == (11, 21)
    pacer = controller.pacers["fs1"]
    wait_until(lambda: pacer.admission.limits == node.limits)
    assert (pacer.admission.rate, pacer.admission.ceiling) == (9, 18)

"""Reconciliation when the gateway listens again (``gateway.calls.reconcile``): what
FreeSWITCH recorded while nobody listened, read back over real ESL from the simulator, on
SQLite and PostgreSQL.

The gateway "down" is a controller that was stopped; the one started after it is a new
process's controller, with nothing in memory but what the database says."""

import time
import uuid as uuidlib
from datetime import datetime, timezone

import gevent
import pytest

from gateway.calls.controller import CallController
from gateway.calls.states import FINAL, Status
from gateway.config import MediaSettings, NodeConfig
from gateway.models import Account, Call, CallEvent, WebhookDelivery
from gateway.simulator import Outcome, Simulator
from gateway.simulator import api as sim_api
from media_support import MediaRig, TwilioBot
from sim_support import RawClient

CALLER = "+15550009999"
ANSWERS = "+15550100001"  # answered at once (the simulator's answer delay)
RINGS_THEN_ANSWERS = "+15550107001"
RING_SECONDS = 1.5  # long enough to stop a controller while it rings
RINGS_FOR_EVER = "+15550100480"  # 180, never answered (outcomes.py)
HOOK = "https://hooks.example.com/status"


@pytest.fixture
def sim():
    simulator = Simulator(port=0, answer_delay=0.05)
    simulator.set_outcome(RINGS_THEN_ANSWERS, Outcome(final=200, provisional=180, delay=RING_SECONDS))
    simulator.start()
    yield simulator
    simulator.stop()


def node_config(sim) -> NodeConfig:
    return NodeConfig(f"127.0.0.1:{sim.port}", "127.0.0.1", sim.port, "ClueCon")


@pytest.fixture
def controllers(database, sim):
    """``make(listener=None)``: a started controller (one per gateway process), every one
    stopped at the end; a listener is in place before the first link comes up."""
    made = []

    def make(listener=None):
        controller = CallController([node_config(sim)], command_timeout=2.0)
        if listener is not None:
            controller.listeners.append(listener)
        made.append(controller)
        controller.start()
        assert controller.wait_connected(5), "controller did not connect to the simulator"
        return controller

    yield make
    for controller in made:
        controller.stop()


@pytest.fixture
def account(database):
    return Account.create(name="acme", default_webhook_url=HOOK)


def fs_time(usec: int) -> datetime:
    return datetime.fromtimestamp(usec / 1_000_000, tz=timezone.utc)


def status_entries(call_uuid: str) -> list[CallEvent]:
    return list(CallEvent.select().where(CallEvent.call == call_uuid, CallEvent.kind == "status")
                .order_by(CallEvent.seq))


def status_log(call_uuid: str) -> list[tuple[str, str, str]]:
    return [(e.from_status, e.to_status, e.detail["reason"]) for e in status_entries(call_uuid)]


def ring_then_stop(controller: CallController, sim, account, number: str = RINGS_THEN_ANSWERS) -> Call:
    """Place a call and stop the controller while it rings (the gateway goes down)."""
    call = controller.originate(account.id, number, CALLER)
    controller.wait_status(call.uuid, [Status.RINGING], 5)
    controller.stop()
    assert "CHANNEL_ANSWER" not in sim.history[call.uuid].events, "answered before the gateway was down"
    return call


def wait_until(predicate, timeout: float):
    """For database state nothing signals: look every 10 ms until the deadline."""
    deadline = time.monotonic() + timeout
    while not (value := predicate()):
        assert time.monotonic() < deadline, "condition not met in time"
        gevent.sleep(0.01)
    return value


# -- still up: answered while the gateway was down --------------------------------------------------

def test_a_call_answered_while_the_gateway_was_down_is_in_progress_at_freeswitchs_answer_time(
        controllers, sim, account):
    call = ring_then_stop(controllers(), sim, account)
    answered_us = sim.wait_event(call.uuid, "CHANNEL_ANSWER", timeout=5).profile.times.answered
    seen = []
    second = controllers(listener=lambda call_uuid, transition: seen.append((call_uuid, transition)))
    assert second.wait_status(call.uuid, [Status.IN_PROGRESS, *FINAL], 5) is Status.IN_PROGRESS
    row = Call.get_by_id(call.uuid)
    assert row.answered_at == fs_time(answered_us)
    assert status_log(call.uuid) == [("queued", "ringing", "CHANNEL_PROGRESS"),
                                     ("ringing", "in_progress", "reconcile")]
    assert status_entries(call.uuid)[-1].at == fs_time(answered_us)
    # the listeners (media sessions, the pacer) see it as they see any answer
    (answer,) = [t for u, t in seen if u == call.uuid and t.to_status is Status.IN_PROGRESS]
    assert answer.at == fs_time(answered_us)
    # and the call carries on: its own hangup ends it, with FreeSWITCH's figures
    second.hangup(call.uuid)
    assert second.wait_status(call.uuid, FINAL, 5) is Status.COMPLETED
    row = Call.get_by_id(call.uuid)
    assert (row.end_reason, row.hangup_cause, row.ended_at_upper_bound) == ("completed", "NORMAL_CLEARING", False)
    assert row.answered_at == fs_time(answered_us)


@pytest.mark.usefixtures("loopback_allowed")
def test_the_reconciled_answer_connects_the_bot_and_sends_call_answered(controllers, sim, account):
    bot = TwilioBot()
    first = controllers()
    call = first.originate(account.id, RINGS_THEN_ANSWERS, CALLER, socket_url=bot.url())
    first.wait_status(call.uuid, [Status.RINGING], 5)
    first.stop()
    assert "CHANNEL_ANSWER" not in sim.history[call.uuid].events, "answered before the gateway was down"
    sim.wait_event(call.uuid, "CHANNEL_ANSWER", timeout=5)
    rig = MediaRig(sim, MediaSettings(playback="stream"), outbox=True)
    try:
        # bounds, not waits: generous, because a loaded machine (three suites on two cores) took over 5 s
        bot.wait_event("start", timeout=15)
        def deliveries():  # a new query each time: peewee keeps a query's first result
            return [d.event_type for d in WebhookDelivery.select().where(WebhookDelivery.call_uuid == call.uuid)
                    .order_by(WebhookDelivery.id)]
        wait_until(lambda: deliveries() == ["call.answered"], 15)
        rig.controller.hangup(call.uuid)
        assert rig.controller.wait_status(call.uuid, FINAL, 5) is Status.COMPLETED
        rig.controller.flush()
        assert deliveries() == ["call.answered", "call.completed"]
    finally:
        rig.stop()
        bot.stop()


def test_a_call_ringing_when_the_gateway_went_down_is_ringing_from_freeswitchs_progress_time(
        controllers, sim, account):
    """The row a gateway leaves when it dies right after sending its originate: queued, with
    its job uuid; the channel rang meanwhile."""
    call = Call.create(uuid=str(uuidlib.uuid4()), account=account, direction="outbound", from_number=CALLER,
                       to_number=RINGS_FOR_EVER, node=node_config(sim).name, job_uuid=str(uuidlib.uuid4()))
    switch = RawClient(sim.port)
    try:
        switch.auth()
        switch.command(f"bgapi originate {{origination_uuid={call.uuid}}}sofia/gateway/carrier/{RINGS_FOR_EVER} "
                       "&park()", headers={"Job-UUID": call.job_uuid})
        progress_us = sim.wait_event(call.uuid, "CHANNEL_PROGRESS", timeout=5).profile.times.progress
    finally:
        switch.close()
    controller = controllers()
    assert controller.wait_status(call.uuid, [Status.RINGING, Status.IN_PROGRESS, *FINAL], 5) is Status.RINGING
    assert Call.get_by_id(call.uuid).ringing_at == fs_time(progress_us)
    assert status_log(call.uuid) == [("queued", "ringing", "reconcile")]
    controller.hangup(call.uuid)
    assert controller.wait_status(call.uuid, FINAL, 5) is Status.MISSED  # it rang: canceled, not failed


def test_when_freeswitch_cannot_dump_the_channel_the_answer_is_dated_no_later_than_the_reconcile(
        controllers, sim, account, monkeypatch):
    """``uuid_dump`` can answer ``-ERR Allocation error`` (mod_commands.c); ``show channels``
    still says the call is ACTIVE."""
    call = ring_then_stop(controllers(), sim, account)
    answered_us = sim.wait_event(call.uuid, "CHANNEL_ANSWER", timeout=5).profile.times.answered
    monkeypatch.setitem(sim_api.COMMANDS, "uuid_dump", lambda sim_, args: "-ERR Allocation error\n")
    before = datetime.now(timezone.utc)
    second = controllers()
    assert second.wait_status(call.uuid, [Status.IN_PROGRESS, *FINAL], 5) is Status.IN_PROGRESS
    row = Call.get_by_id(call.uuid)
    assert row.answered_at >= before > fs_time(answered_us)
    note = status_entries(call.uuid)[-1].detail["note"]
    assert "uuid_dump: -ERR Allocation error" in note and "an upper bound" in note


def test_a_channel_that_hangs_up_during_the_reconcile_ends_with_freeswitchs_own_figures(
        controllers, sim, account, monkeypatch):
    """Gone between ``show channels`` and ``uuid_dump``: its CHANNEL_HANGUP_COMPLETE, already
    on the new link, closes it, not a guess."""
    call = ring_then_stop(controllers(), sim, account)
    sim.wait_event(call.uuid, "CHANNEL_ANSWER", timeout=5)
    dump = sim_api.COMMANDS["uuid_dump"]

    def hang_up_first(sim_, args):
        sim_.far_end_hangup(call.uuid)
        sim_.wait_gone(call.uuid)
        return dump(sim_, args)

    monkeypatch.setitem(sim_api.COMMANDS, "uuid_dump", hang_up_first)
    second = controllers()
    assert second.wait_status(call.uuid, FINAL, 5) is Status.COMPLETED
    row = Call.get_by_id(call.uuid)
    assert (row.hangup_cause, row.ended_at_upper_bound) == ("NORMAL_CLEARING", False)
    assert [entry[2] for entry in status_log(call.uuid)] == ["CHANNEL_PROGRESS", "CHANNEL_HANGUP_COMPLETE"]


# -- gone: ended while the gateway was down -------------------------------------------------------

def test_a_call_answered_then_ended_while_the_gateway_was_down_completes_with_upper_bounds(
        controllers, sim, account):
    first = controllers()
    call = first.originate(account.id, ANSWERS, CALLER)
    first.wait_status(call.uuid, [Status.IN_PROGRESS], 5)
    answered_at = Call.get_by_id(call.uuid).answered_at
    first.stop()
    sim.far_end_hangup(call.uuid)
    hung_up_us = sim.wait_gone(call.uuid).profile.times.hungup
    second = controllers()
    assert second.wait_status(call.uuid, FINAL, 5) is Status.COMPLETED
    row = Call.get_by_id(call.uuid)
    assert row.answered_at == answered_at  # what the gateway knew is kept
    assert (row.end_reason, row.hangup_cause, row.ended_at_upper_bound) == ("completed", "CHANNEL_GONE", True)
    assert row.ended_at >= fs_time(hung_up_us)  # an upper bound, and said so
    assert row.billsec == int((row.ended_at - answered_at).total_seconds())
    assert row.duration_sec == int((row.ended_at - row.created_at).total_seconds())
    last = status_entries(call.uuid)[-1]
    assert (last.to_status, last.detail["reason"], last.detail["hangup_cause"]) == ("completed", "reconcile",
                                                                                    "CHANNEL_GONE")
    assert "upper bounds" in last.detail["note"]


def test_a_call_that_rang_and_ended_while_the_gateway_was_down_fails_with_upper_bounds(
        controllers, sim, account):
    call = ring_then_stop(controllers(), sim, account, number=RINGS_FOR_EVER)
    sim.far_end_hangup(call.uuid)
    sim.wait_gone(call.uuid)
    second = controllers()
    assert second.wait_status(call.uuid, FINAL, 5) is Status.FAILED
    row = Call.get_by_id(call.uuid)
    assert (row.hangup_cause, row.ended_at_upper_bound, row.answered_at, row.billsec) == ("CHANNEL_GONE", True,
                                                                                          None, 0)


def test_a_call_that_ended_in_sight_is_not_marked(controllers, sim, account):
    controller = controllers()
    call = controller.originate(account.id, ANSWERS, CALLER)
    controller.wait_status(call.uuid, [Status.IN_PROGRESS], 5)
    sim.far_end_hangup(call.uuid)
    assert controller.wait_status(call.uuid, FINAL, 5) is Status.COMPLETED
    assert Call.get_by_id(call.uuid).ended_at_upper_bound is False

"""Inbound calls through the shipped dialplan (executed by the simulator) into the controller:
routed, refused unanswered (with the cause and SIP response that fit why), recorded;
``call.answered`` only once a media session is up; ``voicegw simulate-call --did``."""

import json
import os
import subprocess
import sys
from types import SimpleNamespace

import pytest
from gevent.event import Event as Flag

from gateway.calls.controller import CallController
from gateway.calls.states import FINAL, Status
from gateway.config import MediaSettings, NodeConfig
from gateway.models import Account, Agent, Call, CallEvent, PhoneNumber, RefusedCall, WebhookDelivery
from gateway.webhooks.outbox import outbox_hook, outbox_log_hook
from media_support import MediaRig


@pytest.fixture
def sim(dialplan_sim):
    return dialplan_sim


@pytest.fixture
def controller(database, sim):
    controller = CallController([NodeConfig("fs", "127.0.0.1", sim.port, "ClueCon")], command_timeout=2.0)
    controller.start()
    assert controller.wait_connected(5)
    yield controller
    controller.stop()


@pytest.fixture
def account(database):
    return Account.create(name="acme")


def wait_call(controller, sim, uuid, status):
    sim.wait_for(lambda: Call.get_or_none(Call.uuid == uuid) is not None, timeout=5)
    return controller.wait_status(uuid, [status], 5)


def test_did_routed_to_a_bot_is_answered_and_recorded(controller, sim, account):
    PhoneNumber.create(account=account, e164="+14155550100", route="bot", socket_url="wss://bot.example.com/a")
    uuid = sim.inject_inbound("+14155550100", "+15557654321", "Jane Caller")
    assert wait_call(controller, sim, uuid, Status.IN_PROGRESS) is Status.IN_PROGRESS
    call = Call.get_by_id(uuid)
    assert (call.direction, call.account_id, call.to_number, call.from_number) == (
        "inbound", account.id, "+14155550100", "+15557654321")
    assert call.caller_id_name == "Jane Caller" and call.socket_url == "wss://bot.example.com/a"
    assert sim.channels[uuid].variables["gateway_did"] == "+14155550100"
    controller.hangup(uuid)
    assert controller.wait_status(uuid, [Status.COMPLETED], 5) is Status.COMPLETED


def test_did_routed_to_an_agent_uses_the_agents_media_target(controller, sim, account):
    agent = Agent.create(account=account, key="support", name="Support", driver="elevenlabs", driver_ref="agent_123")
    PhoneNumber.create(account=account, e164="+14155550101", route="agent", agent=agent)
    uuid = sim.inject_inbound("14155550101", "+15557654321")  # dialled without the +
    wait_call(controller, sim, uuid, Status.IN_PROGRESS)
    assert Call.get_by_id(uuid).socket_url == "elevenlabs&agent_123"


def test_did_routed_to_a_webhook_keeps_the_webhook(controller, sim, account):
    PhoneNumber.create(account=account, e164="+14155550102", route="webhook", webhook_url="https://hooks.example.com/r")
    uuid = sim.inject_inbound("+14155550102", "+15557654321")
    wait_call(controller, sim, uuid, Status.IN_PROGRESS)
    call = Call.get_by_id(uuid)
    assert call.webhook_url == "https://hooks.example.com/r" and call.socket_url is None


def test_dialplan_pinned_route_wins(controller, sim, account):
    uuid = sim.inject_inbound("+12025550103", "+15557654321")  # example route: webhook, account 1
    wait_call(controller, sim, uuid, Status.IN_PROGRESS)
    assert Call.get_by_id(uuid).webhook_url == "https://hooks.example.com/route-call?src=fs&v=1"


def test_did_nobody_owns_is_refused_unallocated(controller, sim, account):
    uuid = sim.inject_inbound("+14155550199", "+15557654321")
    channel = sim.wait_gone(uuid, timeout=5)
    assert channel.variables["hangup_cause"] == "UNALLOCATED_NUMBER"
    assert Call.get_or_none(Call.uuid == uuid) is None


def test_number_outside_the_did_pattern_never_reaches_the_gateway(controller, sim, account):
    uuid = sim.inject_inbound("12", "+15557654321")
    channel = sim.wait_gone(uuid, timeout=5)
    assert channel.variables["hangup_cause"] == "UNALLOCATED_NUMBER"
    assert "gateway_did" not in channel.variables


# -- refused without an answer; call.answered only with a media session ----------------------------

ROUTED_DID = "+14155550150"
CALLER = "+15557654321"


@pytest.fixture
def rig(database, sim):
    """Simulator (shipped dialplan) + controller + media bridge + media sessions, with the
    webhook outbox wired as ``Gateway`` wires it; ``request_route`` stands in for the
    customer's routing webhook."""
    rigs = []

    def make(request_route):
        made = MediaRig(sim, MediaSettings(playback="stream"), request_route=request_route)
        made.controller.transaction_hooks.append(outbox_hook)
        made.controller.log_hooks.append(outbox_log_hook)
        rigs.append(made)
        return made
    yield make
    for made in rigs:
        made.stop()


def routing_answer(action, **fields):
    return lambda **request: SimpleNamespace(action=action, socket_url=fields.get("socket_url"),
                                             timeout=None, reason=fields.get("reason"), detail="")


def webhook_number(account):
    return PhoneNumber.create(account=account, e164=ROUTED_DID, route="webhook",
                              webhook_url="https://hooks.example.com/route")


def log_of(call_uuid):
    return list(CallEvent.select().where(CallEvent.call == call_uuid).order_by(CallEvent.seq))


def deliveries(call_uuid):
    return [d.event_type for d in WebhookDelivery.select().where(WebhookDelivery.call_uuid == call_uuid)
            .order_by(WebhookDelivery.id)]


def refused_on_the_switch(sim, uuid):
    """What the simulated FreeSWITCH did with the call: its events, cause and SIP answer."""
    channel = sim.wait_gone(uuid, timeout=10)
    return (("CHANNEL_ANSWER" in channel.events), channel.variables["hangup_cause"],
            channel.variables.get("sip_hangup_disposition"), channel.session.dialog.refused_with)


def test_routing_webhook_hangup_refuses_the_call_without_answering_it(rig, sim, account):
    r = rig(routing_answer("hangup", reason="business_hours_closed"))
    webhook_number(account)
    uuid = sim.inject_inbound(ROUTED_DID, CALLER)

    assert refused_on_the_switch(sim, uuid) == (False, "CALL_REJECTED", "send_refuse", (603, "Decline"))
    assert r.controller.wait_status(uuid, FINAL, 5) is Status.FAILED
    call = Call.get_by_id(uuid)
    assert (call.status, call.end_reason, call.hangup_cause, call.answered_at, call.billsec) == (
        "failed", "rejected", "CALL_REJECTED", None, 0)
    r.controller.flush()
    entries = log_of(uuid)
    refused = [e.detail for e in entries if e.kind == "inbound"]
    assert refused == [{"event": "refused", "reason": "business_hours_closed", "cause": "CALL_REJECTED"}]
    assert not any(e.kind == "command" and e.detail.get("command") == "answer" for e in entries)
    (record,) = RefusedCall.select()
    assert (record.call_uuid, record.account_id, record.did, record.from_number, record.reason,
            record.hangup_cause) == (uuid, account.id, ROUTED_DID, CALLER, "business_hours_closed", "CALL_REJECTED")
    # no media session, so no call.answered: only the call-control contract's call.completed
    assert deliveries(uuid) == ["call.completed"]


def test_a_number_with_no_media_target_is_refused_no_route(rig, sim, account):
    r = rig(routing_answer("default"))  # the webhook gives no answer; the account has no defaults
    webhook_number(account)
    uuid = sim.inject_inbound(ROUTED_DID, CALLER)

    assert refused_on_the_switch(sim, uuid) == (False, "NO_ROUTE_DESTINATION", "send_refuse", (404, "Not Found"))
    r.controller.wait_status(uuid, FINAL, 5)
    assert RefusedCall.get().reason == "no_media_target"
    assert Call.get_by_id(uuid).answered_at is None


def test_a_number_whose_agent_is_inactive_is_refused_and_recorded(controller, sim, account):
    agent = Agent.create(account=account, key="off", name="Off", driver="elevenlabs", driver_ref="a1", active=False)
    PhoneNumber.create(account=account, e164=ROUTED_DID, route="agent", agent=agent)
    uuid = sim.inject_inbound(ROUTED_DID, CALLER)

    assert refused_on_the_switch(sim, uuid) == (False, "NO_ROUTE_DESTINATION", "send_refuse", (404, "Not Found"))
    assert controller.wait_status(uuid, FINAL, 5) is Status.FAILED
    assert (RefusedCall.get().reason, Call.get_by_id(uuid).hangup_cause) == ("agent_unavailable",
                                                                            "NO_ROUTE_DESTINATION")


def test_a_did_nobody_owns_is_recorded_as_refused_without_a_call_row(controller, sim, account):
    uuid = sim.inject_inbound("+14155550199", CALLER, "Spam Caller")

    assert refused_on_the_switch(sim, uuid) == (False, "UNALLOCATED_NUMBER", "send_refuse", (404, "Not Found"))
    record = sim.wait_for(lambda: RefusedCall.get_or_none(RefusedCall.call_uuid == uuid), timeout=5)
    assert (record.account_id, record.did, record.caller_id_name, record.reason, record.hangup_cause) == (
        None, "+14155550199", "Spam Caller", "unknown_number", "UNALLOCATED_NUMBER")
    assert Call.get_or_none(Call.uuid == uuid) is None


def test_a_screen_that_fails_refuses_the_call_service_unavailable(controller, sim, account):
    def broken(call_uuid):
        raise RuntimeError("bug")
    controller.inbound_screens.append(broken)
    PhoneNumber.create(account=account, e164=ROUTED_DID, route="bot", socket_url="wss://bot.example.com/a")
    uuid = sim.inject_inbound(ROUTED_DID, CALLER)

    assert refused_on_the_switch(sim, uuid) == (False, "NORMAL_TEMPORARY_FAILURE", "send_refuse",
                                                (503, "Service Unavailable"))
    assert controller.wait_status(uuid, FINAL, 5) is Status.FAILED
    assert RefusedCall.get().reason == "screening_failed"


def test_stop_kills_and_joins_a_screen_that_blocks_and_writes_what_was_queued(database, sim, account):
    """``CallController.stop`` returns only once the greenlets its parts started have
    ended (a screen still deciding is killed, and its ``finally`` has run) and the worker
    has written what was queued before it."""
    controller = CallController([NodeConfig("fs", "127.0.0.1", sim.port, "ClueCon")], command_timeout=2.0)
    screening, screen_ended = Flag(), Flag()

    def slow(call_uuid):
        screening.set()
        try:
            Flag().wait(60)
        finally:
            screen_ended.set()
    controller.inbound_screens.append(slow)
    controller.start()
    try:
        assert controller.wait_connected(5)
        PhoneNumber.create(account=account, e164=ROUTED_DID, route="bot", socket_url="wss://bot.example.com/a")
        uuid = sim.inject_inbound(ROUTED_DID, CALLER)
        assert screening.wait(5)
        controller.log(uuid, "note", {"text": "written before the worker ends"})
    finally:
        controller.stop(timeout=0.5)
    assert screen_ended.is_set()
    assert [e.detail for e in CallEvent.select().where(CallEvent.call == uuid, CallEvent.kind == "note")] == [
        {"text": "written before the worker ends"}]


def test_the_dialplans_own_refusal_answers_404(sim):
    uuid = sim.inject_inbound("12", CALLER)  # outside gateway_did_regex: `unallocated` hangs it up
    assert refused_on_the_switch(sim, uuid) == (False, "UNALLOCATED_NUMBER", "send_refuse", (404, "Not Found"))


@pytest.mark.usefixtures("loopback_allowed")  # the bot listens on 127.0.0.1
def test_routing_webhook_connect_answers_the_call_and_is_asked_once(rig, sim, account, bot):
    asked = []

    def request_route(**request):
        asked.append(request)
        return routing_answer("connect", socket_url=bot.url("/routed"))()
    r = rig(request_route)
    webhook_number(account)
    uuid = sim.inject_inbound(ROUTED_DID, CALLER)

    assert wait_call(r.controller, sim, uuid, Status.IN_PROGRESS) is Status.IN_PROGRESS
    bot.wait_event("start")
    sim.wait_for(lambda: deliveries(uuid) == ["call.answered"], timeout=5)
    r.controller.hangup(uuid)
    r.controller.wait_status(uuid, FINAL, 5)
    assert len(asked) == 1 and asked[0]["direction"] == "inbound"  # decided before the answer, used at it
    assert deliveries(uuid) == ["call.answered", "call.completed"]
    assert "CHANNEL_ANSWER" in sim.history[uuid].events and not RefusedCall.select().exists()


def test_a_caller_who_hangs_up_while_the_webhook_decides_is_neither_answered_nor_refused(rig, sim, account):
    deciding, decide = Flag(), Flag()

    def request_route(**request):
        deciding.set()
        decide.wait(5)
        return routing_answer("hangup", reason="too_late")()
    r = rig(request_route)
    webhook_number(account)
    uuid = sim.inject_inbound(ROUTED_DID, CALLER)
    assert deciding.wait(5)
    sim.far_end_hangup(uuid)
    assert r.controller.wait_status(uuid, FINAL, 5) is Status.MISSED
    decide.set()
    r.controller.flush()
    channel = sim.history[uuid]
    assert "CHANNEL_ANSWER" not in channel.events and channel.variables["sip_hangup_disposition"] == "recv_cancel"
    assert not RefusedCall.select().exists()
    assert not any(e.kind == "inbound" for e in log_of(uuid))


def test_outbound_call_answered_but_refused_a_bot_sends_no_call_answered(rig, sim, account):
    r = rig(routing_answer("hangup", reason="nobody_home"))
    call = r.controller.originate(account.id, "+15550100001", "+15550009999",
                                  webhook_url="https://hooks.example.com/route")
    assert r.controller.wait_status(call.uuid, FINAL, 5) is Status.COMPLETED  # the far end did answer
    r.controller.flush()
    assert deliveries(call.uuid) == ["call.completed"]


@pytest.mark.usefixtures("loopback_allowed")  # the bot listens on 127.0.0.1
def test_outbound_call_with_a_bot_sends_call_answered_once_its_media_is_up(rig, sim, account, bot):
    r = rig(routing_answer("default"))
    call = r.controller.originate(account.id, "+15550100001", "+15550009999", socket_url=bot.url(),
                                  webhook_url="https://hooks.example.com/status")
    r.controller.wait_status(call.uuid, [Status.IN_PROGRESS], 5)
    bot.wait_event("start")
    sim.wait_for(lambda: deliveries(call.uuid) == ["call.answered"], timeout=5)
    established = [e for e in log_of(call.uuid) if e.detail.get("event") == "session_established"]
    (delivery,) = WebhookDelivery.select().where(WebhookDelivery.call_uuid == call.uuid)
    assert delivery.url == "https://hooks.example.com/status"
    assert json.loads(delivery.body)["timestamp"] == established[0].at.strftime("%Y-%m-%dT%H:%M:%SZ")
    assert established[0].at >= Call.get_by_id(call.uuid).answered_at
    r.controller.hangup(call.uuid)
    r.controller.wait_status(call.uuid, FINAL, 5)


# -- voicegw simulate-call --did ------------------------------------------------------------------


def simulate_call(sim, database_url, *args, timeout=60):
    env = {**os.environ, "GATEWAY_DATABASE_URL": database_url}
    env.pop("GATEWAY_CONFIG", None)
    return subprocess.run([sys.executable, "-m", "gateway.cli", "simulate-call", "--esl",
                           f"127.0.0.1:{sim.port}:ClueCon", "--caller", CALLER, *args],
                          env=env, capture_output=True, text=True, timeout=timeout)


def test_simulate_call_did_hangs_up_after_seconds_and_prints_the_calls_log(controller, sim, account,
                                                                        database_url):
    PhoneNumber.create(account=account, e164="+14155550103", route="bot", socket_url="wss://bot.example.com/x")
    result = simulate_call(sim, database_url, "--did", "+14155550103", "--seconds", "1")
    assert result.returncode == 0, result.stdout + result.stderr
    call = Call.get(Call.to_number == "+14155550103")
    assert (call.direction, call.from_number, call.status, call.end_reason) == (
        "inbound", CALLER, "completed", "completed")
    assert 1 <= call.billsec <= 3
    out = result.stdout
    assert out.startswith("injected: +OK")
    assert f"call {call.uuid} answered; the caller hangs up in 1s" in out
    assert "call ended: status=completed end_reason=completed cause=NORMAL_CLEARING" in out
    assert "queued -> ringing" in out and "ringing -> in_progress" in out and "in_progress -> completed" in out
    assert not sim.channels  # nothing left up on the switch


def test_simulate_call_did_prints_why_the_gateway_refused_it(controller, sim, account, database_url):
    result = simulate_call(sim, database_url, "--did", "+14155550198", "--seconds", "5")
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.startswith("injected: -ERR UNALLOCATED_NUMBER")
    assert "refused by the gateway: reason=unknown_number cause=UNALLOCATED_NUMBER" in result.stdout
    assert not sim.channels


@pytest.mark.parametrize("args, message", [
    (("--did", "+14155550103", "--seconds", "0"), "--seconds must be more than 0"),
    (("--did", "not a number"), "not a number"),
])
def test_simulate_call_did_bad_input_is_one_line(sim, database_url, args, message):
    result = simulate_call(sim, database_url, *args)
    assert result.returncode == 2 and message in result.stderr and "Traceback" not in result.stderr
    assert not sim.history  # nothing was injected

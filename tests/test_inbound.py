"""Inbound calls through the shipped dialplan (executed by the simulator) into the controller."""

from pathlib import Path

import pytest

from gateway.calls.controller import CallController
from gateway.calls.states import Status
from gateway.config import NodeConfig
from gateway.models import Account, Agent, Call, PhoneNumber
from gateway.simulator import Simulator

DIALPLAN = Path(__file__).resolve().parents[1] / "dialplan"


@pytest.fixture
def sim():
    simulator = Simulator(port=0, answer_delay=0.05, dialplan_dir=str(DIALPLAN))
    simulator.start()
    yield simulator
    simulator.stop()


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


def test_simulate_call_injects_an_inbound_call_through_the_public_context(controller, sim, account):
    from gateway.simulate_call import inject

    PhoneNumber.create(account=account, e164="+14155550103", route="bot", socket_url="wss://bot.example.com/x")
    lines = []
    assert inject(NodeConfig("fs", "127.0.0.1", sim.port, "ClueCon"), "+14155550103", "+15557654321", "CLI",
                  out=type("Out", (), {"write": lambda self, text: lines.append(text)})()) == 0
    assert lines and lines[0].startswith("injected: +OK")
    call = Call.get(Call.to_number == "+14155550103")
    assert (call.direction, call.from_number, call.account_id) == ("inbound", "+15557654321", account.id)
    assert controller.wait_status(call.uuid, [Status.IN_PROGRESS], 5) is Status.IN_PROGRESS

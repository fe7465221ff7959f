"""A voice agent built on the admin surface, in a call: an inbound call on its number
reaches its ElevenLabs agent with the agent's profile as the conversation's overrides,
and a ``client_tool_call`` runs the agent's own webhook tool, whose run is on the call's
conversation. End to end: the shipped dialplan on the simulator, the bridge, the
ElevenLabs stand-in, a tool endpoint on 127.0.0.1."""
from __future__ import annotations

import pytest

from voice_admin_support import *  # noqa: F401,F403 -- fixtures
from voice_admin_support import PREFIX, new_agent
from webhook_support import Reply, receiver  # noqa: F401 -- fixture
from api_support import _gateway
from gateway import models
from gateway.calls.states import FINAL, Status
from gateway.config import MediaSettings, NodeConfig
from gateway.models import Call, PhoneNumber, ToolRun
from provider_standins import ElevenLabsStandIn

DID = "+14155550100"
LOOKUP = {"type": "object", "properties": {"order_id": {"type": "string"}}, "required": ["order_id"]}


@pytest.fixture
def sim(dialplan_sim):
    return dialplan_sim


@pytest.fixture
def eleven():
    standin = ElevenLabsStandIn(api_key="xi-key", agents={"agent_sales": True})
    yield standin
    standin.stop()


@pytest.fixture
def gw(database_url, sim, eleven):
    node = NodeConfig(f"127.0.0.1:{sim.port}", "127.0.0.1", sim.port, "ClueCon")
    gateway = _gateway(database_url, (node,), media=MediaSettings(elevenlabs_url=eleven.url))
    assert gateway.controller.wait_connected(5)
    yield gateway
    gateway.stop()
    models.database.initialize(None)


@pytest.mark.usefixtures("loopback_allowed")  # the stand-in and the tool listen on 127.0.0.1
def test_a_voice_agents_call_starts_with_its_profile_and_runs_its_tools(client, gw, sim, keys, account_a, eleven,
                                                                        receiver):
    account_a.elevenlabs_api_key = "xi-key"
    account_a.save()
    PhoneNumber.create(account=account_a, e164=DID, route="bot", socket_url="wss://bot.example.com/x")
    agent = new_agent(client, keys.one, driver="elevenlabs", driver_ref="agent_sales", language="en",
                      prompt="You sell boats.", first_message="Ahoy!", voice_id="voice_42",
                      dynamic_variables={"shop": "Harbour"})
    tool = client.post(f"{PREFIX}/agents/{agent['id']}/tools", headers=keys.one, json={
        "name": "lookup_order", "description": "Find an order", "url": receiver.url("/orders"),
        "parameters": LOOKUP})
    assert tool.status_code == 201, tool.json
    assert client.post(f"{PREFIX}/agents/{agent['id']}/phone", json={"phone_number": DID},
                       headers=keys.one).status_code == 200

    uuid = sim.inject_inbound(DID, "+15557654321", "Jane Caller")
    sim.wait_for(lambda: Call.get_or_none(Call.uuid == uuid) is not None, timeout=5)
    assert gw.controller.wait_status(uuid, [Status.IN_PROGRESS], 5) is Status.IN_PROGRESS
    eleven.peer()
    opening = eleven.client_data()
    assert opening["conversation_config_override"] == {
        "agent": {"prompt": {"prompt": "You sell boats."}, "first_message": "Ahoy!", "language": "en"},
        "tts": {"voice_id": "voice_42"}}
    assert opening["dynamic_variables"]["shop"] == "Harbour"
    assert eleven.problems == []  # the opening is what ElevenLabs' own types take

    receiver.script(Reply(200, b'{"status": "shipped"}'))
    eleven.send({"type": "client_tool_call", "client_tool_call": {
        "tool_name": "lookup_order", "tool_call_id": "tc_1", "parameters": {"order_id": "42"}}})
    [result] = eleven.ws.wait_for(lambda: eleven.sent("client_tool_result") or None, 5, "the tool's result")
    assert result == {"type": "client_tool_result", "tool_call_id": "tc_1", "result": '{"status": "shipped"}',
                      "is_error": False}
    assert receiver.requests[0].json() == {"order_id": "42"}
    run = ToolRun.get()
    assert (run.call_id, run.tool_name, run.is_error) == (uuid, "lookup_order", False)
    conversation = client.get(f"{PREFIX}/conversations/{uuid}", headers=keys.one)
    assert conversation.status_code == 200, conversation.json
    assert [r["tool_name"] for r in conversation.json["tool_runs"]] == ["lookup_order"]

    gw.controller.hangup(uuid)
    gw.controller.wait_status(uuid, FINAL, 5)
    assert Call.get_by_id(uuid).agent_id == int(agent["id"])


@pytest.mark.usefixtures("loopback_allowed")
def test_an_agent_without_a_profile_sends_no_overrides(client, gw, sim, keys, account_a, eleven):
    """An ElevenLabs agent made without a profile (its ElevenLabs side may not allow
    overrides) starts its conversations with the call's variables alone."""
    account_a.elevenlabs_api_key = "xi-key"
    account_a.save()
    PhoneNumber.create(account=account_a, e164=DID, route="bot", socket_url="wss://bot.example.com/x")
    agent = new_agent(client, keys.one, driver="elevenlabs", driver_ref="agent_sales")
    assert client.post(f"{PREFIX}/agents/{agent['id']}/phone", json={"phone_number": DID},
                       headers=keys.one).status_code == 200
    uuid = sim.inject_inbound(DID, "+15557654321", "Jane Caller")
    sim.wait_for(lambda: Call.get_or_none(Call.uuid == uuid) is not None, timeout=5)
    assert gw.controller.wait_status(uuid, [Status.IN_PROGRESS], 5) is Status.IN_PROGRESS
    eleven.peer()
    assert "conversation_config_override" not in eleven.client_data()
    gw.controller.hangup(uuid)
    gw.controller.wait_status(uuid, FINAL, 5)

"""``/phone-numbers`` and ``/agents/:id/phone``: the account's numbers, attaching one to an
agent so that an inbound call on the DID reaches the agent's bot (through the shipped
dialplan on the simulator); the carve-outs (no provisioning, no account credentials)."""
from __future__ import annotations

import pytest

from voice_admin_support import *  # noqa: F401,F403 -- fixtures
from voice_admin_support import PREFIX, new_agent
from api_support import _gateway
from gateway import models
from gateway.calls.states import FINAL, Status
from gateway.config import MediaSettings, NodeConfig
from gateway.models import Account, Call, PhoneNumber

DID = "+14155550100"


@pytest.fixture
def sim(dialplan_sim):
    return dialplan_sim


@pytest.fixture
def gw(database_url, sim):
    """The API's gateway with its media bridge: an answered inbound call gets its bot."""
    node = NodeConfig(f"127.0.0.1:{sim.port}", "127.0.0.1", sim.port, "ClueCon")
    gateway = _gateway(database_url, (node,), media=MediaSettings())
    assert gateway.controller.wait_connected(5)
    yield gateway
    gateway.stop()
    models.database.initialize(None)


@pytest.fixture
def numbers(account_a, account_b):
    return {"a": PhoneNumber.create(account=account_a, e164=DID, route="bot", socket_url="wss://bot.example.com/x"),
            "a2": PhoneNumber.create(account=account_a, e164="+14155550101", route="bot",
                                     socket_url="wss://bot.example.com/y"),
            "b": PhoneNumber.create(account=account_b, e164="+919812345670", route="bot",
                                    socket_url="wss://b.example.com/x")}


@pytest.mark.usefixtures("loopback_allowed")  # the bot listens on 127.0.0.1
def test_an_attached_number_routes_inbound_calls_to_the_agent(client, gw, sim, keys, numbers, bot):
    agent = new_agent(client, keys.one, driver="websocket", driver_ref=bot.url("/agent"))
    attached = client.post(f"{PREFIX}/agents/{agent['id']}/phone", json={"phone_number": DID}, headers=keys.one)
    assert attached.status_code == 200, attached.json
    assert attached.json == {"id": str(numbers["a"].id), "phone_number": DID, "agent_id": agent["id"],
                             "route": "agent"}
    assert client.get(f"{PREFIX}/agents/{agent['id']}", headers=keys.one).json["phone_numbers"] == [DID]

    uuid = sim.inject_inbound(DID, "+15557654321", "Jane Caller")
    sim.wait_for(lambda: Call.get_or_none(Call.uuid == uuid) is not None, timeout=5)
    assert gw.controller.wait_status(uuid, [Status.IN_PROGRESS], 5) is Status.IN_PROGRESS
    [start] = bot.wait_event("start")  # the agent's bot has the call's media
    assert start["start"]["callSid"] == "CA" + uuid.replace("-", "")
    assert Call.get_by_id(uuid).socket_url == bot.url("/agent")
    assert Call.get_by_id(uuid).agent_id == int(agent["id"])  # the agent's conversation
    gw.controller.hangup(uuid)
    gw.controller.wait_status(uuid, FINAL, 5)


def test_list_and_attach_by_id(client, keys, numbers):
    listed = client.get(f"{PREFIX}/phone-numbers", headers=keys.read).json
    assert [n["phone_number"] for n in listed["phone_numbers"]] == [DID, "+14155550101"]
    assert (listed["total"], listed["limit"], listed["offset"]) == (2, 50, 0)
    assert client.get(f"{PREFIX}/phone-numbers", headers=keys.b).json["phone_numbers"][0]["phone_number"] == \
        "+919812345670"
    agent = new_agent(client, keys.one)
    response = client.post(f"{PREFIX}/agents/{agent['id']}/phone", json={"phone_number_id": str(numbers["a2"].id)},
                           headers=keys.one)
    assert response.status_code == 200 and response.json["agent_id"] == agent["id"]
    assert PhoneNumber.get_by_id(numbers["a2"].id).agent_id == int(agent["id"])


def test_attach_isolation_and_bad_input(client, keys, numbers):
    mine = new_agent(client, keys.one)["id"]
    theirs = new_agent(client, keys.two)["id"]
    path = f"{PREFIX}/agents/{{}}/phone"
    # Another owner's agent, another account's number, another account's key: 404.
    assert client.post(path.format(theirs), json={"phone_number": DID}, headers=keys.one).status_code == 404
    assert client.post(path.format(mine), json={"phone_number": "+919812345670"}, headers=keys.one).json == {
        "error": "Phone number not found"}
    assert client.post(path.format(mine), json={"phone_number_id": str(numbers["b"].id)},
                       headers=keys.one).status_code == 404
    assert client.post(path.format(mine), json={"phone_number": DID}, headers=keys.b).status_code == 404
    # Owner two's number is not owner one's to take.
    assert client.post(path.format(theirs), json={"phone_number": DID}, headers=keys.two).status_code == 200
    taken = client.post(path.format(mine), json={"phone_number": DID}, headers=keys.one)
    assert taken.status_code == 409 and "cannot change" in taken.json["error"]
    # Scopes: read-only keys cannot attach; a key without voice:read cannot list.
    for auth in (keys.read, keys.all):
        response = client.post(path.format(mine), json={"phone_number": "+14155550101"}, headers=auth)
        assert response.status_code == 403 and "voice:write" in response.json["error"]
    assert client.get(f"{PREFIX}/phone-numbers", headers=keys.none).status_code == 403
    for body in ({}, {"phone_number": DID, "phone_number_id": "1"}, {"phone_number": 14155550100},
                 {"phone_number": DID, "extra": 1}):
        response = client.post(path.format(mine), json=body, headers=keys.one)
        assert response.status_code == 400 and list(response.json) == ["error"], body


def test_no_provisioning_and_no_account_credentials(client, keys, account_a, numbers):
    Account.update(elevenlabs_api_key="xi-secret-of-the-account", vapi_api_key="vapi-secret-of-the-account").where(
        Account.id == account_a.id).execute()
    agent = new_agent(client, keys.account)["id"]
    for method, path in [("post", "/phone-numbers"), ("put", "/phone-numbers"), ("post", "/phone-numbers/provision"),
                         ("post", "/phone-numbers/buy"), ("get", "/settings"), ("put", "/settings"),
                         ("get", "/voice-settings"), ("get", "/credentials"), ("post", "/credentials"),
                         ("get", "/account"), ("delete", f"/phone-numbers/{numbers['a'].id}")]:
        response = getattr(client, method)(PREFIX + path, json={}, headers=keys.account)
        assert response.status_code in (404, 405), (method, path, response.status_code)
    for path in ("/agents", f"/agents/{agent}", "/phone-numbers", f"/agents/{agent}/env-vars"):
        text = client.get(PREFIX + path, headers=keys.account).get_data(as_text=True)
        assert "secret-of-the-account" not in text

"""``/api/agent-api/voice/agents``: CRUD, scopes, ownership isolation, bad input; and
the initiation data an ElevenLabs conversation of the agent starts with."""
from __future__ import annotations

import pytest

from voice_admin_support import *  # noqa: F401,F403 -- fixtures
from voice_admin_support import PREFIX, new_agent
from gateway.models import Agent, AgentKnowledge, KnowledgeDocument
from gateway.voice_agents import conversation_initiation


def test_create_read_update_delete(client, keys, owners):
    created = new_agent(client, keys.one, prompt="You sell {{product}}.\nBe brief.", first_message="Hi {{name}}",
                        voice_id="21m00Tcm4TlvDq8ikWAM", llm="gemini-2.0-flash", language="hi-IN",
                        dynamic_variables={"product": "loans", "tries": 2, "vip": False})
    assert created["key"] == "sales-bot" and created["driver"] == "elevenlabs"
    assert created["owner_agent_id"] == str(owners.one.id)
    assert created["dynamic_variables"] == {"product": "loans", "tries": 2, "vip": False}
    assert (created["knowledge"], created["phone_numbers"]) == ([], [])
    agent_id = created["id"]
    assert client.get(f"{PREFIX}/agents/{agent_id}", headers=keys.one).json == created

    second = new_agent(client, keys.one)
    assert second["key"] == "sales-bot-2"  # derived keys stay unique

    changed = client.patch(f"{PREFIX}/agents/{agent_id}", json={"first_message": None, "name": "Closer"},
                           headers=keys.one)
    assert changed.status_code == 200, changed.json
    assert (changed.json["name"], changed.json["first_message"], changed.json["prompt"]) == (
        "Closer", None, created["prompt"])

    listed = client.get(f"{PREFIX}/agents?limit=1&offset=1", headers=keys.one).json
    assert (listed["total"], listed["limit"], listed["offset"]) == (2, 1, 1)
    assert [agent["id"] for agent in listed["agents"]] == [second["id"]]

    assert client.delete(f"{PREFIX}/agents/{agent_id}", headers=keys.one).json == {"deleted": True}
    assert client.get(f"{PREFIX}/agents/{agent_id}", headers=keys.one).status_code == 404
    assert Agent.get_by_id(int(agent_id)).active is False
    assert client.get(f"{PREFIX}/agents", headers=keys.one).json["total"] == 1


def test_given_key_and_websocket_driver(client, keys, loopback_allowed):
    created = new_agent(client, keys.account, key="front-desk", driver="websocket",
                        driver_ref="ws://127.0.0.1:9/bot")
    assert (created["key"], created["driver_ref"], created["owner_agent_id"]) == (
        "front-desk", "ws://127.0.0.1:9/bot", None)
    again = client.post(f"{PREFIX}/agents", json={"name": "x", "key": "front-desk", "driver_ref": "abc"},
                        headers=keys.account)
    assert again.status_code == 409 and "front-desk" in again.json["error"]


@pytest.mark.parametrize("body, words", [
    ({"name": "A", "driver_ref": "abc", "first_mesage": "hi"}, "first_mesage: Unknown field"),
    ({"name": 12, "driver_ref": "abc"}, "name: Not a valid string"),
    ({"driver_ref": "abc"}, "name: Missing data"),
    ({"name": "A", "driver_ref": "abc", "dynamic_variables": {"x": [1]}}, "Must be a string, a number or a boolean"),
    ({"name": "A", "driver_ref": "abc", "dynamic_variables": {"1bad": "v"}}, "dynamic_variables"),
    ({"name": "A", "driver_ref": "abc", "driver": "sip"}, "driver: Must be one of"),
    ({"name": "A", "driver_ref": "abc", "language": "english!"}, "language"),
    ({"name": "A", "driver_ref": "ws://10.0.0.7/bot", "driver": "websocket"}, "refused"),
    ({"name": "A", "driver_ref": "has space", "driver": "elevenlabs"}, "elevenlabs id"),
    ({"name": "A", "driver_ref": "abc", "key": "Bad Key"}, "key: "),
])
def test_bad_bodies_are_400(client, keys, body, words):
    response = client.post(f"{PREFIX}/agents", json=body, headers=keys.one)
    assert response.status_code == 400, response.json
    assert words in response.json["error"]
    assert list(response.json) == ["error"]


def test_non_finite_numbers_are_refused(client, keys):
    body = b'{"name": "A", "driver_ref": "abc", "dynamic_variables": {"x": NaN}}'
    response = client.post(f"{PREFIX}/agents", data=body, content_type="application/json", headers=keys.one)
    assert response.status_code == 400 and "dynamic_variables" in response.json["error"]


def test_bad_patch_and_ids(client, keys):
    agent_id = new_agent(client, keys.one)["id"]
    response = client.patch(f"{PREFIX}/agents/{agent_id}", json={"driver_ref": 5}, headers=keys.one)
    assert response.status_code == 400 and "driver_ref" in response.json["error"]
    for bad in ("abc", "0", "99999999", "1" * 30):
        assert client.get(f"{PREFIX}/agents/{bad}", headers=keys.one).json == {"error": "Agent not found"}
    assert client.get(f"{PREFIX}/agents?limit=0", headers=keys.one).status_code == 400


def test_scopes(client, keys):
    agent_id = new_agent(client, keys.one)["id"]
    for method, path, body in [("get", "/agents", None), ("get", f"/agents/{agent_id}", None)]:
        response = getattr(client, method)(PREFIX + path, json=body, headers=keys.none)
        assert response.status_code == 403 and "voice:read" in response.json["error"]
    for method, path, body in [("post", "/agents", {"name": "x", "driver_ref": "a"}),
                               ("patch", f"/agents/{agent_id}", {"name": "y"}),
                               ("delete", f"/agents/{agent_id}", None)]:
        for auth in (keys.read, keys.all):
            response = getattr(client, method)(PREFIX + path, json=body, headers=auth)
            assert response.status_code == 403 and "voice:write" in response.json["error"], response.json
    assert client.get(f"{PREFIX}/agents", headers={}).status_code == 401


def test_isolation(client, keys, owners):
    mine = new_agent(client, keys.one)["id"]
    theirs = new_agent(client, keys.two, name="Other")["id"]
    path = f"{PREFIX}/agents/{theirs}"
    # Owner one neither reads nor changes owner two's agent.
    assert [a["id"] for a in client.get(f"{PREFIX}/agents", headers=keys.one).json["agents"]] == [mine]
    assert client.get(path, headers=keys.one).status_code == 404
    assert client.patch(path, json={"name": "pwned"}, headers=keys.one).status_code == 404
    assert client.delete(path, headers=keys.one).status_code == 404
    # voice:read:all reads across owners; the account-wide key reads and writes everything.
    assert {mine, theirs} <= {a["id"] for a in client.get(f"{PREFIX}/agents", headers=keys.all).json["agents"]}
    assert client.get(path, headers=keys.all).status_code == 200
    assert client.patch(path, json={"name": "ops"}, headers=keys.account).status_code == 200
    # Filtered by owner, within what the key may read.
    by_two = client.get(f"{PREFIX}/agents?owner_agent_id={owners.two.id}", headers=keys.all).json
    assert [a["id"] for a in by_two["agents"]] == [theirs] and by_two["total"] == 1
    assert client.get(f"{PREFIX}/agents?owner_agent_id={owners.two.id}", headers=keys.one).json["total"] == 0
    assert client.get(f"{PREFIX}/agents?owner_agent_id={2**40}", headers=keys.all).json["total"] == 0
    assert client.get(f"{PREFIX}/agents?owner_agent_id=x", headers=keys.all).status_code == 400
    # Account B sees nothing of A's.
    assert client.get(f"{PREFIX}/agents", headers=keys.b).json["total"] == 0
    for method in ("get", "patch", "delete"):
        response = getattr(client, method)(path, json={"name": "x"} if method == "patch" else None, headers=keys.b)
        assert response.status_code == 404
    assert Agent.get_by_id(int(theirs)).name == "ops" and Agent.get_by_id(int(theirs)).active


def test_conversation_initiation(client, keys, account_a):
    body = new_agent(client, keys.one, prompt="Sell {{product}}.", first_message="Hello {{name}}",
                     voice_id="voice123", llm="gpt-4o", language="hi-IN",
                     dynamic_variables={"product": "loans", "name": "friend"})
    agent = Agent.get_by_id(int(body["id"]))
    ready = KnowledgeDocument.create(account=account_a, name="Rates", kind="text", status="ready",
                                     text="Home loans: 8.5%.")
    pending = KnowledgeDocument.create(account=account_a, name="Later", kind="url", status="processing")
    for document in (ready, pending):
        AgentKnowledge.create(agent=agent, document=document)
    data = conversation_initiation(agent, {"name": "Rahul", "bad name": "x", "nested": {"no": 1}})
    assert data["type"] == "conversation_initiation_client_data"
    override = data["conversation_config_override"]
    assert override["agent"]["first_message"] == "Hello {{name}}"
    assert override["agent"]["language"] == "hi"
    assert override["agent"]["prompt"]["llm"] == "gpt-4o"
    prompt = override["agent"]["prompt"]["prompt"]
    assert prompt.startswith("Sell {{product}}.") and "## Rates\nHome loans: 8.5%." in prompt
    assert "Later" not in prompt
    assert override["tts"] == {"voice_id": "voice123"}
    assert data["dynamic_variables"] == {"product": "loans", "name": "Rahul"}


def test_initiation_of_a_bare_agent(client, keys):
    agent = Agent.get_by_id(int(new_agent(client, keys.one)["id"]))
    assert conversation_initiation(agent, {}) == {
        "type": "conversation_initiation_client_data",
        "conversation_config_override": {"agent": {"language": "en"}}, "dynamic_variables": {}}

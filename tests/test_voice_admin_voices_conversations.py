"""``/voices`` (ElevenLabs' ``GET /v1/voices`` through a stand-in on 127.0.0.1, cached; a
clear error without the account's key) and the conversations of agents (their calls,
transcripts, recordings, tool runs and outcomes); scopes and isolation."""
from __future__ import annotations

import json
import uuid

import pytest
from gevent.pywsgi import WSGIServer

from voice_admin_support import *  # noqa: F401,F403 -- fixtures
from voice_admin_support import PREFIX, new_agent
from api_support import _gateway
from gateway import models
from gateway.config import MediaSettings, NodeConfig
from gateway.models import Account, Agent, Call, ToolRun, utcnow
from gateway.voice_agents import voices


class ElevenLabsStandIn:
    """``GET /v1/voices`` as ElevenLabs documents it: ``{"voices": [...]}``, ``xi-api-key``."""

    KEY = "xi-test-key"

    def __init__(self):
        self.calls = 0
        self.server = WSGIServer(("127.0.0.1", 0), self.app, log=None, error_log=None)
        self.server.start()
        self.url = f"ws://127.0.0.1:{self.server.server_port}"

    def app(self, environ, start_response):
        self.calls += 1
        if environ.get("HTTP_XI_API_KEY") != self.KEY:
            status, body = "401 Unauthorized", {"detail": {"status": "invalid_api_key"}}
        elif environ["PATH_INFO"] != "/v1/voices":
            status, body = "404 Not Found", {"detail": "Not Found"}
        else:
            status, body = "200 OK", {"voices": [
                {"voice_id": "21m00Tcm4TlvDq8ikWAM", "name": "Rachel", "category": "premade",
                 "labels": {"accent": "american", "gender": "female"}, "preview_url": "https://x.example/r.mp3"},
                {"voice_id": "abc", "name": "Clone", "category": "cloned", "labels": None}]}
        data = json.dumps(body).encode()
        start_response(status, [("Content-Type", "application/json"), ("Content-Length", str(len(data)))])
        return [data]


@pytest.fixture
def elevenlabs():
    stand_in = ElevenLabsStandIn()
    voices.forget()
    yield stand_in
    voices.forget()
    stand_in.server.stop(timeout=0.2)


@pytest.fixture
def gw(database_url, sim, elevenlabs):
    """The API's gateway with ElevenLabs' base URL at the stand-in."""
    node = NodeConfig(f"127.0.0.1:{sim.port}", "127.0.0.1", sim.port, "ClueCon")
    gateway = _gateway(database_url, (node,), media=MediaSettings(enabled=False, elevenlabs_url=elevenlabs.url))
    assert gateway.controller.wait_connected(5)
    yield gateway
    gateway.stop()
    models.database.initialize(None)


def test_voices_are_listed_and_cached(client, keys, account_a, elevenlabs):
    assert client.get(f"{PREFIX}/voices", headers=keys.read).json == {
        "error": "The account has no ElevenLabs API key; an operator sets it (voicegw accounts set --elevenlabs-key)"}
    Account.update(elevenlabs_api_key=ElevenLabsStandIn.KEY).where(Account.id == account_a.id).execute()
    response = client.get(f"{PREFIX}/voices", headers=keys.read)
    assert response.status_code == 200, response.json
    assert response.json["voices"] == [
        {"voice_id": "21m00Tcm4TlvDq8ikWAM", "name": "Rachel", "category": "premade",
         "labels": {"accent": "american", "gender": "female"}, "preview_url": "https://x.example/r.mp3"},
        {"voice_id": "abc", "name": "Clone", "category": "cloned", "labels": {}, "preview_url": None}]
    assert ElevenLabsStandIn.KEY not in response.get_data(as_text=True)
    assert client.get(f"{PREFIX}/voices", headers=keys.all).status_code == 200
    assert elevenlabs.calls == 1  # the second read came from the cache
    assert client.get(f"{PREFIX}/voices", headers=keys.none).status_code == 403


def test_a_refused_key_is_a_502(client, keys, account_a, elevenlabs):
    Account.update(elevenlabs_api_key="wrong").where(Account.id == account_a.id).execute()
    response = client.get(f"{PREFIX}/voices", headers=keys.one)
    assert response.json == {"error": "ElevenLabs refused the account's API key"}
    assert response.status_code == 502
    assert client.get(f"{PREFIX}/voices", headers=keys.b).status_code == 409  # B has no key


def agent_call(account, agent_id, **fields):
    now = utcnow()
    return Call.create(uuid=str(uuid.uuid4()), account=account, direction="inbound", from_number="+15557654321",
                       to_number="+14155550100", node="fs", agent=int(agent_id), status="completed",
                       end_reason="completed", answered_at=now, ended_at=now, billsec=42, **fields)


def test_conversations(client, keys, account_a):
    agent_id = new_agent(client, keys.one)["id"]
    first = agent_call(account_a, agent_id)
    second = agent_call(account_a, agent_id, transcript=[{"bot": "Hi"}, {"user": "Book me"}],
                        analysis={"call_successful": "success", "summary": "Booked"},
                        recording_url="https://rec.example/2.mp3")
    ToolRun.create(agent=int(agent_id), call=second.uuid, tool_name="calendly", parameters={"action": "book"},
                   result="Booked: x", is_error=False, duration_ms=120)
    listed = client.get(f"{PREFIX}/agents/{agent_id}/conversations", headers=keys.one).json
    assert listed["total"] == 2 and {c["id"] for c in listed["conversations"]} == {first.uuid, second.uuid}
    read = client.get(f"{PREFIX}/conversations/{second.uuid}", headers=keys.one).json
    assert (read["status"], read["duration_seconds"], read["outcome"], read["recording_url"]) == (
        "completed", 42, "success", "https://rec.example/2.mp3")
    assert read["transcript"] == [{"bot": "Hi"}, {"user": "Book me"}]
    assert [(r["tool_name"], r["result"], r["is_error"]) for r in read["tool_runs"]] == [
        ("calendly", "Booked: x", False)]
    first_read = client.get(f"{PREFIX}/conversations/{first.uuid}", headers=keys.one).json
    assert (first_read["outcome"], first_read["transcript"], first_read["tool_runs"]) == (None, None, [])


def test_conversations_isolation(client, keys, account_a):
    theirs = new_agent(client, keys.two)["id"]
    call = agent_call(account_a, theirs, analysis={"classification": "Interested"})
    for auth in (keys.one, keys.b):
        assert client.get(f"{PREFIX}/agents/{theirs}/conversations", headers=auth).status_code == 404
        assert client.get(f"{PREFIX}/conversations/{call.uuid}", headers=auth).json == {
            "error": "Conversation not found"}
    assert client.get(f"{PREFIX}/conversations/{call.uuid}", headers=keys.all).json["outcome"] == "Interested"
    assert client.get(f"{PREFIX}/agents/{theirs}/conversations", headers=keys.all).json["total"] == 1
    assert client.get(f"{PREFIX}/conversations/{call.uuid}", headers=keys.none).status_code == 403
    # A call of no agent is no conversation, even for the account-wide key.
    plain = Call.create(uuid=str(uuid.uuid4()), account=account_a, direction="outbound", from_number="+1",
                        to_number="+2", node="fs")
    assert client.get(f"{PREFIX}/conversations/{plain.uuid}", headers=keys.account).status_code == 404
    for bad in ("nope", "1", "x" * 40):
        assert client.get(f"{PREFIX}/conversations/{bad}", headers=keys.account).status_code == 404
    assert client.get(f"{PREFIX}/agents/{theirs}/conversations?limit=500", headers=keys.all).status_code == 400
    assert Agent.get_by_id(int(theirs)).active

"""``/agents/:id/tools`` and the tool runner: custom webhook tools and the Calendly preset
against stand-ins on 127.0.0.1, env vars substituted, the outbound-URL policy, limits,
every run recorded; scopes, isolation, bad input."""
from __future__ import annotations

import json
from urllib.parse import parse_qs

import pytest
from gevent.pywsgi import WSGIServer

from voice_admin_support import *  # noqa: F401,F403 -- fixtures
from voice_admin_support import PREFIX, new_agent
from webhook_support import Reply, make_call, receiver  # noqa: F401 -- fixture
from gateway import net_policy
from gateway.models import Agent, AgentTool, ToolRun
from gateway.voice_agents import calendly, tools
from gateway.voice_agents.tools import run_tool

LOOKUP = {"type": "object", "properties": {"order_id": {"type": "string", "pattern": "^[0-9]+$"}},
          "required": ["order_id"], "additionalProperties": False}


class CalendlyStandIn:
    """Calendly's API v2 as its documentation describes the two calls the preset makes."""

    TOKEN = "cal-token-123"

    def __init__(self):
        self.requests = []
        self.server = WSGIServer(("127.0.0.1", 0), self.app, log=None, error_log=None)
        self.server.start()
        self.url = f"http://127.0.0.1:{self.server.server_port}"

    def app(self, environ, start_response):
        body = environ["wsgi.input"].read()
        self.requests.append((environ["REQUEST_METHOD"], environ["PATH_INFO"], parse_qs(environ["QUERY_STRING"]),
                              json.loads(body) if body else None))
        if environ.get("HTTP_AUTHORIZATION") != f"Bearer {self.TOKEN}":
            return self.answer(start_response, 401, {"title": "Unauthenticated"})
        if environ["REQUEST_METHOD"] == "GET" and environ["PATH_INFO"] == "/event_type_available_times":
            return self.answer(start_response, 200, {"collection": [
                {"status": "available", "start_time": "2026-12-09T10:00:00Z", "invitees_remaining": 1},
                {"status": "available", "start_time": "2026-12-09T11:00:00Z", "invitees_remaining": 1}]})
        if environ["REQUEST_METHOD"] == "POST" and environ["PATH_INFO"] == "/invitees":
            return self.answer(start_response, 201, {"resource": {
                "uri": "https://api.calendly.com/scheduled_events/EV1/invitees/INV1",
                "event": "https://api.calendly.com/scheduled_events/EV1"}})
        return self.answer(start_response, 404, {"title": "Not found"})

    @staticmethod
    def answer(start_response, status, body):
        data = json.dumps(body).encode()
        start_response(f"{status} X", [("Content-Type", "application/json"), ("Content-Length", str(len(data)))])
        return [data]


@pytest.fixture
def calendly_api(monkeypatch):
    stand_in = CalendlyStandIn()
    monkeypatch.setattr(calendly, "API_URL", stand_in.url)
    yield stand_in
    stand_in.server.stop(timeout=0.2)


def add_tool(client, auth, agent_id, **fields):
    body = {"name": "lookup_order", "description": "Find an order", "url": "https://crm.example.com/orders",
            "parameters": LOOKUP, **fields}
    return client.post(f"{PREFIX}/agents/{agent_id}/tools", json=body, headers=auth)


@pytest.mark.usefixtures("loopback_allowed")
def test_webhook_tool_runs_with_env_vars_and_is_recorded(client, keys, receiver, account_a):
    agent_id = new_agent(client, keys.one)["id"]
    client.put(f"{PREFIX}/agents/{agent_id}/env-vars/CRM_KEY", json={"value": "crm-secret"}, headers=keys.one)
    created = add_tool(client, keys.one, agent_id, url=receiver.url("/orders?key={{env.CRM_KEY}}"),
                       headers={"Authorization": "Bearer {{env.CRM_KEY}}", "X-Plain": "1"})
    assert created.status_code == 201, created.json
    assert created.json["header_names"] == ["Authorization", "X-Plain"] and "crm-secret" not in str(created.json)
    listed = client.get(f"{PREFIX}/agents/{agent_id}/tools", headers=keys.one).json["tools"]
    assert [tool["name"] for tool in listed] == ["lookup_order"]

    receiver.script(Reply(200, b'{"status": "shipped"}'))
    call = make_call(account_a)
    agent = Agent.get_by_id(int(agent_id))
    assert run_tool(agent, "lookup_order", {"order_id": "42"}, call_uuid=call.uuid) == ('{"status": "shipped"}',
                                                                                       False)
    [request] = receiver.wait_for(1)
    assert request.method == "POST" and request.json() == {"order_id": "42"}
    assert request.headers["authorization"] == "Bearer crm-secret"
    run = ToolRun.get()
    assert (run.call_id, run.tool_name, run.parameters, run.is_error) == (call.uuid, "lookup_order",
                                                                          {"order_id": "42"}, False)

    # Parameters are checked against the schema and never get env vars substituted.
    text, failed = run_tool(agent, "lookup_order", {"order_id": "{{env.CRM_KEY}}"})
    assert failed and "invalid parameters" in text
    assert run_tool(agent, "nope", {}) == ("Tool error: the agent has no tool named 'nope'", True)
    assert run_tool(agent, "lookup_order", {"order_id": float("nan")}) == (
        "Tool error: the parameters are not a JSON object", True)
    assert ToolRun.select().count() == 4 and len(receiver.requests) == 1


@pytest.mark.usefixtures("loopback_allowed")
def test_webhook_tool_limits(client, keys, receiver, monkeypatch):
    agent_id = new_agent(client, keys.one)["id"]
    assert add_tool(client, keys.one, agent_id, url=receiver.url("/big"), method="GET").status_code == 201
    agent = Agent.get_by_id(int(agent_id))
    receiver.script(Reply(200, b"x" * (tools.MAX_RESPONSE_BYTES + 1)))
    text, failed = run_tool(agent, "lookup_order", {"order_id": "1"})
    assert failed and "larger than" in text
    monkeypatch.setattr(tools, "TIMEOUT", 0.2)
    receiver.script(Reply(200, b"{}", delay=1.0))
    text, failed = run_tool(agent, "lookup_order", {"order_id": "1"})
    assert failed and "Timeout" in text
    receiver.script(Reply(500, b"boom"))
    assert run_tool(agent, "lookup_order", {"order_id": "1"}) == ("Tool error: the service answered 500: boom", True)
    AgentTool.update(url=receiver.url("/x?k={{env.MISSING}}")).execute()
    assert run_tool(agent, "lookup_order", {"order_id": "1"}) == (
        "Tool error: the agent has no env var MISSING", True)
    assert receiver.requests[0].method == "GET"


def test_a_tool_on_a_private_address_is_refused(client, keys, receiver):
    agent_id = new_agent(client, keys.one)["id"]
    for url in ("http://10.0.0.7/hook", "http://169.254.169.254/latest", "http://127.0.0.1:9/x",
                "http://{{env.HOST}}/x"):
        response = add_tool(client, keys.one, agent_id, url=url)
        assert response.status_code == 400 and response.json["error"].startswith("url: "), (url, response.json)
    # One stored while loopback was allowed is refused when the run connects.
    AgentTool.create(agent=int(agent_id), name="inside", kind="webhook", url=receiver.url("/x"),
                     parameters={"type": "object"})
    text, failed = run_tool(Agent.get_by_id(int(agent_id)), "inside", {})
    assert failed and "refused" in text and not receiver.requests


def test_calendly_preset(client, keys, calendly_api):
    agent_id = new_agent(client, keys.one)["id"]
    event_type = "https://api.calendly.com/event_types/ET1"
    created = client.post(f"{PREFIX}/agents/{agent_id}/tools/calendly", json={"event_type": event_type},
                          headers=keys.one)
    assert created.status_code == 201, created.json
    assert (created.json["name"], created.json["kind"]) == ("calendly", "calendly")
    agent = Agent.get_by_id(int(agent_id))
    window = {"action": "availability", "start_time": "2026-12-09T00:00:00Z", "end_time": "2026-12-10T00:00:00Z"}
    assert run_tool(agent, "calendly", window) == ("Tool error: the agent has no env var CALENDLY_TOKEN", True)

    client.put(f"{PREFIX}/agents/{agent_id}/env-vars/CALENDLY_TOKEN", json={"value": CalendlyStandIn.TOKEN},
               headers=keys.one)
    with net_policy.policy.allowing("127.0.0.1"):
        assert run_tool(agent, "calendly", window) == (
            "Open start times: 2026-12-09T10:00:00Z, 2026-12-09T11:00:00Z", False)
        booking = {"action": "book", "start_time": "2026-12-09T10:00:00Z", "name": "Rahul",
                   "email": "rahul@example.com", "timezone": "Asia/Kolkata"}
        assert run_tool(agent, "calendly", booking) == ("Booked: https://api.calendly.com/scheduled_events/EV1",
                                                        False)
        text, failed = run_tool(agent, "calendly", {"action": "book", "start_time": "2026-12-09T10:00:00Z"})
        assert failed and "'name' is a required property" in text
    (_, path, query, _), (_, book_path, _, book_body) = calendly_api.requests
    assert path == "/event_type_available_times"
    assert query == {"event_type": [event_type], "start_time": [window["start_time"]],
                     "end_time": [window["end_time"]]}
    assert book_path == "/invitees" and book_body == {
        "event_type": event_type, "start_time": "2026-12-09T10:00:00Z",
        "invitee": {"name": "Rahul", "email": "rahul@example.com", "timezone": "Asia/Kolkata"}}

    again = client.post(f"{PREFIX}/agents/{agent_id}/tools/calendly", json={"event_type": event_type},
                        headers=keys.one)
    assert again.status_code == 409
    assert client.delete(f"{PREFIX}/agents/{agent_id}/tools/calendly", headers=keys.one).json == {"deleted": True}
    assert client.get(f"{PREFIX}/agents/{agent_id}/tools", headers=keys.one).json == {"tools": []}


@pytest.mark.parametrize("fields, words", [
    ({"parameters": {"type": "nonsense"}}, "parameters: not a valid JSON Schema"),
    ({"parameters": {"type": "array"}}, "must describe an object"),
    ({"parameters": "x"}, "parameters: Not a valid mapping"),
    ({"name": "has space"}, "name: "),
    ({"method": "TRACE"}, "method: Must be one of"),
    ({"url": "ftp://example.com/x"}, "url: "),
    ({"headers": {"Bad Header": "x"}}, "headers"),
    ({"extra": 1}, "extra: Unknown field"),
])
def test_bad_tool_bodies(client, keys, fields, words):
    agent_id = new_agent(client, keys.one)["id"]
    response = add_tool(client, keys.one, agent_id, **fields)
    assert response.status_code == 400 and words in response.json["error"], response.json


def test_a_schema_with_nan_is_refused(client, keys):
    agent_id = new_agent(client, keys.one)["id"]
    body = (b'{"name": "t", "description": "d", "url": "https://crm.example.com/x",'
            b' "parameters": {"type": "object", "maximum": Infinity}}')
    response = client.post(f"{PREFIX}/agents/{agent_id}/tools", data=body, content_type="application/json",
                           headers=keys.one)
    assert response.status_code == 400 and "NaN and Infinity" in response.json["error"]


def test_bad_calendly_bodies(client, keys):
    agent_id = new_agent(client, keys.one)["id"]
    for body in ({}, {"event_type": "http://api.calendly.com/x"}, {"event_type": "https://x", "token_env": "low"},
                 {"event_type": "https://x", "other": 1}):
        response = client.post(f"{PREFIX}/agents/{agent_id}/tools/calendly", json=body, headers=keys.one)
        assert response.status_code == 400, body


def test_tools_scopes_and_isolation(client, keys):
    theirs = new_agent(client, keys.two)["id"]
    assert add_tool(client, keys.two, theirs).status_code == 201
    path = f"{PREFIX}/agents/{theirs}/tools"
    for auth in (keys.one, keys.b):
        assert client.get(path, headers=auth).status_code == 404
        assert add_tool(client, auth, theirs, name="other").status_code == 404
        assert client.post(f"{path}/calendly", json={"event_type": "https://x"}, headers=auth).status_code == 404
        assert client.delete(f"{path}/lookup_order", headers=auth).status_code == 404
    assert [t["name"] for t in client.get(path, headers=keys.all).json["tools"]] == ["lookup_order"]
    for auth in (keys.all, keys.read):
        assert add_tool(client, auth, theirs, name="other").status_code == 403
        assert client.delete(f"{path}/lookup_order", headers=auth).status_code == 403
    assert client.get(path, headers=keys.none).status_code == 403
    assert client.delete(f"{path}/missing", headers=keys.two).json == {"error": "Tool not found"}
    assert AgentTool.select().count() == 1

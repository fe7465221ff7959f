"""``/v1``: agent calls and the agent list, both contracts' spellings, on SQLite and PostgreSQL."""

from __future__ import annotations

import uuid
from decimal import Decimal

import gevent
import pytest

from api_support import *  # noqa: F401,F403 -- fixtures
from api_support import CALLER_ID, FINAL, Status, bearer, headers, make_agent
from gateway.api.agents.calls import transcript_turns
from gateway.auth.keys import create_key
from gateway.models import Account, Agent, Call


@pytest.fixture
def agents_a(account_a):
    return {
        "akylai": make_agent(account_a, "akylai", "Akylai", language="ky"),
        "altai": make_agent(account_a, "altai", "Home Loan Agent", driver="elevenlabs", driver_ref="tVvN3xAbc",
                            language="hi-IN"),
        "vapi": make_agent(account_a, "vapi-bot", "Admission Enquiry", driver="vapi", driver_ref="abc-123",
                           language="en-IN", agent_type="outbound"),
    }


def call_agent(client, key, auth=headers, **body):
    return client.post("/v1/calls", json=body, headers=auth(key))


def test_minimal_contract_call(client, gw, sim, key_a, agents_a, account_a):
    response = call_agent(client, key_a, auth=bearer, phone="+996700000000", agent="akylai")
    assert response.status_code == 200, response.json
    assert list(response.json) == ["call_id", "status"] and response.json["status"] == "registered"
    call_id = response.json["call_id"]
    row = Call.get_by_id(call_id)
    assert (row.to_number, row.from_number, row.agent_id, row.surface, row.socket_url) == (
        "+996700000000", CALLER_ID, agents_a["akylai"].id, "v1", "wss://agents.example.com/akylai")

    gw.controller.wait_status(call_id, [Status.IN_PROGRESS], 5)
    record = client.get(f"/v1/calls/{call_id}", headers=bearer(key_a)).json
    assert record["status"] == "in_progress"
    gw.controller.hangup(call_id)
    gw.controller.wait_status(call_id, FINAL, 5)
    record = client.get(f"/v1/calls/{call_id}", headers=bearer(key_a)).json
    assert record == {
        "call_id": call_id, "status": "completed", "direction": "outbound",
        "phone_number": "+996700000000", "phone": "+996700000000",
        "agent": "akylai", "agent_id": str(agents_a["akylai"].id), "agent_name": "Akylai",
        "contact_name": None, "custom_args": {}, "duration_seconds": record["duration_seconds"],
        "duration": record["duration_seconds"], "provider_duration_seconds": None, "recording_url": None,
        "transcript": None, "analysis": None, "called_at": record["called_at"], "ended_at": record["ended_at"],
    }
    assert record["called_at"].endswith("Z") and record["ended_at"].endswith("Z")


def test_events_contract_call_with_agent_name_and_custom_args(client, key_a, agents_a):
    response = call_agent(client, key_a, phone_number="+919876543210", agent_name="Home Loan Agent",
                          custom_args={"name": "Rahul Sharma", "product": "Home Loan"}, campaign_id="ignored")
    assert response.status_code == 200, response.json
    call_id = response.json["call_id"]
    row = Call.get_by_id(call_id)
    assert (row.socket_url, row.contact_name) == ("elevenlabs&tVvN3xAbc", "Rahul Sharma")
    assert row.custom_args == {"name": "Rahul Sharma", "product": "Home Loan"}
    # Processing results, as the completion flow stores them.
    Call.update(transcript=[{"bot": "Hi Rahul"}, {"user": "Yes"}],
                analysis={"summary": "Interested", "classification": "Interested"},
                recording_url="https://rec.example/abc.mp3").where(Call.uuid == call_id).execute()
    record = client.get(f"/v1/calls/{call_id}", headers=headers(key_a)).json
    assert record["transcript"] == [{"bot": "Hi Rahul"}, {"user": "Yes"}]
    assert record["analysis"] == {"summary": "Interested", "classification": "Interested"}
    assert record["recording_url"] == "https://rec.example/abc.mp3"
    assert (record["agent_name"], record["contact_name"]) == ("Home Loan Agent", "Rahul Sharma")
    assert record["custom_args"]["product"] == "Home Loan"


def test_agent_id_and_contact_name_and_vapi_driver(client, key_a, agents_a):
    agent = agents_a["vapi"]
    for agent_id in (str(agent.id), agent.id):
        response = call_agent(client, key_a, phone_number="212-555-0101", agent_id=agent_id, contact_name="Asha")
        assert response.status_code == 200, response.json
        row = Call.get_by_id(response.json["call_id"])
        assert (row.socket_url, row.contact_name, row.to_number) == ("vapi&abc-123", "Asha", "+12125550101")


def test_contact_name_from_custom_args_must_be_text(client, key_a, agents_a):
    response = call_agent(client, key_a, phone="+996700000000", agent="akylai",
                          custom_args={"name": "bad\x00name", "n": "\x00"})
    assert response.status_code == 200, response.json
    row = Call.get_by_id(response.json["call_id"])
    assert row.contact_name is None and row.custom_args == {"name": "bad\x00name", "n": "\x00"}


def test_transcript_text_from_the_minimal_webhook_is_split_into_turns():
    assert transcript_turns("agent: Hello\nuser: Hi\nthere\nagent: Bye") == [
        {"bot": "Hello"}, {"user": "Hi\nthere"}, {"bot": "Bye"}]
    assert transcript_turns(None) is None
    assert transcript_turns([{"bot": "x"}, "junk", {"user": None}]) == [{"bot": "x"}, {"user": ""}]


BAD_REQUESTS = [
    ({"agent": "akylai"}, 400, "phone_number: Missing data for required field (send phone or phone_number)."),
    ({"phone": "+996700000000"}, 400, "agent: Missing data for required field (send agent, agent_name or agent_id)."),
    ({"phone": "+996700000000", "phone_number": "+996700000001", "agent": "akylai"}, 400,
     "phone_number: phone and phone_number differ; send one of them."),
    ({"phone": "+996700000000", "agent": "akylai", "agent_name": "Akylai"}, 400,
     "agent: send one of agent, agent_name or agent_id, not agent and agent_name."),
    ({"phone": 996700000000, "agent": "akylai"}, 400, "phone: Not a valid string."),
    ({"phone": "+996700000000", "agent": ["akylai"]}, 400, "agent: Not a valid string."),
    ({"phone": "+996700000000", "agent": "akylai", "custom_args": "x"}, 400, "custom_args: Not a valid mapping type."),
    ({"phone": "+996700000000", "agent": "akylai", "contact_name": "a\nb"}, 400,
     "contact_name: Must not contain control characters."),
    ({"phone": "+99670", "agent": "akylai"}, 400, "phone: '+99670' is too short for a number in region KG"),
    ({"phone_number": "call me", "agent": "akylai"}, 400, "phone_number: 'call me' is not a phone number:"
                                                          " it contains letters"),
    ({"phone": "+996700000000", "agent": "nobody"}, 404, "Agent not found"),
    ({"phone": "+996700000000", "agent_name": "Nobody"}, 404, "Agent not found"),
    ({"phone": "+996700000000", "agent_id": "999999"}, 404, "Agent not found"),
    ({"phone": "+996700000000", "agent_id": "99999999999999999999"}, 404, "Agent not found"),
    ({"phone": "+996700000000", "agent_id": "akylai"}, 404, "Agent not found"),
]


def test_bad_agent_call_requests(client, key_a, agents_a):
    for body, status, message in BAD_REQUESTS:
        response = call_agent(client, key_a, **body)
        assert (response.status_code, response.json) == (status, {"error": message}), body
    assert Call.select().count() == 0


def test_inactive_agents_and_ambiguous_names(client, key_a, agents_a, account_a):
    Agent.update(active=False).where(Agent.key == "akylai").execute()
    assert call_agent(client, key_a, phone="+996700000000", agent="akylai").status_code == 404
    make_agent(account_a, "altai-2", "Home Loan Agent")
    response = call_agent(client, key_a, phone="+996700000000", agent_name="Home Loan Agent")
    assert response.status_code == 400
    assert response.json == {"error": "agent_name: several agents have this name; send agent (the key) or agent_id"}


def test_insufficient_credits(client, key_a, agents_a, account_a):
    for balance in ("0", "-1.5"):
        Account.update(balance=Decimal(balance)).where(Account.id == account_a.id).execute()
        response = call_agent(client, key_a, phone="+996700000000", agent="akylai")
        assert (response.status_code, response.json) == (402, {"error": "Insufficient credits"})
    assert Call.select().count() == 0


def test_no_caller_id_is_409(client, key_a, agents_a, account_a):
    Account.update(default_caller_id=None).where(Account.id == account_a.id).execute()
    response = call_agent(client, key_a, phone="+996700000000", agent="akylai")
    assert (response.status_code, response.json) == (409, {"error": "No caller ID is configured for this account"})


def test_no_switch_connected_is_503_in_neutral_words(client, gw, sim, key_a, agents_a):
    sim.stop()
    node = next(iter(gw.controller.nodes.values()))
    with gevent.Timeout(5):
        while node.connected.is_set():
            gevent.sleep(0.01)
    response = call_agent(client, key_a, phone="+996700000000", agent="akylai")
    assert (response.status_code, response.json) == (503, {"error": "Could not place the call right now. Please retry"})
    assert "FreeSWITCH" not in response.get_data(as_text=True)
    assert Call.select().count() == 0


def test_a_default_caller_id_need_only_be_a_possible_number(client, key_a, agents_a, account_a):
    # International digits without +, not an assigned Brazilian number: a carrier may take it.
    Account.update(default_caller_id="5511888888888").where(Account.id == account_a.id).execute()
    response = call_agent(client, key_a, phone="5511999999999", agent="akylai")
    assert response.status_code == 200, response.json
    row = Call.get_by_id(response.json["call_id"])
    assert (row.to_number, row.from_number) == ("+5511999999999", "+5511888888888")
    Account.update(default_caller_id="55118888").where(Account.id == account_a.id).execute()
    response = call_agent(client, key_a, phone="5511999999999", agent="akylai")
    assert (response.status_code, response.json) == (409, {
        "error": "The account's caller ID is invalid: '55118888' is too short for a number in region US"})


def test_calls_and_agents_of_another_account_are_invisible(client, gw, key_a, key_b, agents_a, account_b):
    call_id = call_agent(client, key_a, phone="+996700000000", agent="akylai").json["call_id"]
    unknown = client.get(f"/v1/calls/{uuid.uuid4()}", headers=headers(key_b))
    foreign = client.get(f"/v1/calls/{call_id}", headers=headers(key_b))
    assert (foreign.status_code, foreign.json) == (unknown.status_code, unknown.json) == (404, {"error": "Call not found"})
    # B cannot use A's agents, by key, name or id.
    for body in ({"agent": "akylai"}, {"agent_name": "Akylai"}, {"agent_id": str(agents_a["akylai"].id)}):
        response = call_agent(client, key_b, phone="+919876543210", **body)
        assert (response.status_code, response.json) == (404, {"error": "Agent not found"})
    assert client.get("/v1/agents", headers=headers(key_b)).json == {"agents": [], "total": 0, "limit": 50, "offset": 0}
    gw.controller.wait_status(call_id, [Status.IN_PROGRESS], 5)
    gw.controller.hangup(call_id)
    gw.controller.wait_status(call_id, FINAL, 5)


def test_unknown_and_malformed_call_ids(client, key_a):
    for call_id in (str(uuid.uuid4()), "abc123xyz", "%00", "1" * 80):
        response = client.get(f"/v1/calls/{call_id}", headers=headers(key_a))
        assert (response.status_code, response.json) == (404, {"error": "Call not found"})


def test_agent_owned_keys_see_their_agent_only(client, key_a, agents_a, account_a):
    own = create_key(account_a, owner_agent=agents_a["altai"])[1]
    listed = client.get("/v1/agents", headers=headers(own)).json
    assert [a["key"] for a in listed["agents"]] == ["altai"] and listed["total"] == 1
    assert call_agent(client, own, phone="+996700000000", agent="akylai").status_code == 404
    other = call_agent(client, key_a, phone="+996700000000", agent="akylai").json["call_id"]
    assert client.get(f"/v1/calls/{other}", headers=headers(own)).status_code == 404
    mine = call_agent(client, own, phone="+996700000000", agent="altai").json["call_id"]
    assert client.get(f"/v1/calls/{mine}", headers=headers(own)).json["agent"] == "altai"


def test_list_agents_with_pagination(client, key_a, agents_a, account_a):
    listed = client.get("/v1/agents", headers=bearer(key_a)).json
    assert listed["total"] == 3 and (listed["limit"], listed["offset"]) == (50, 0)
    assert listed["agents"][1] == {"id": str(agents_a["altai"].id), "key": "altai", "name": "Home Loan Agent",
                                   "language": "hi-IN", "agent_type": "outbound"}
    for i in range(7):
        make_agent(account_a, f"extra-{i}", f"Extra {i}")
    Agent.update(active=False).where(Agent.key == "extra-6").execute()
    page = client.get("/v1/agents?limit=3&offset=6", headers=headers(key_a)).json
    assert [a["key"] for a in page["agents"]] == ["extra-3", "extra-4", "extra-5"]
    assert (page["total"], page["limit"], page["offset"]) == (9, 3, 6)
    assert client.get("/v1/agents?offset=100", headers=headers(key_a)).json["agents"] == []


BAD_PAGES = [
    ("limit=0", "limit: Must be greater than or equal to 1 and less than or equal to 100."),
    ("limit=101", "limit: Must be greater than or equal to 1 and less than or equal to 100."),
    ("limit=ten", "limit: Not a valid integer."),
    ("offset=-1", "offset: Must be greater than or equal to 0 and less than or equal to 2147483647."),
    ("offset=99999999999999999999", "offset: Must be greater than or equal to 0 and less than or equal to 2147483647."),
]


def test_bad_pagination(client, key_a):
    for query, message in BAD_PAGES:
        response = client.get(f"/v1/agents?{query}", headers=headers(key_a))
        assert (response.status_code, response.json) == (400, {"error": message}), query


def test_scopes(client, account_a, agents_a):
    calls_only = create_key(account_a, scopes=["calls:read", "calls:write"])[1]
    response = client.get("/v1/agents", headers=headers(calls_only))
    assert (response.status_code, response.json) == (403, {"error": "This API key does not have the agents:read scope"})
    read_only = create_key(account_a, scopes=["calls:read", "agents:read"])[1]
    response = call_agent(client, read_only, phone="+996700000000", agent="akylai")
    assert (response.status_code, response.json) == (403, {"error": "This API key does not have the calls:write scope"})

"""``/api/agent-api/voice/campaigns`` and ``/actions``: campaigns, contacts, start/pause/stop
requests that wait for a person, action polling; scopes, ownership isolation (owner keys,
``voice:read:all``, other accounts) and bad input, in the surface's ``{"error": …}`` shape."""

from __future__ import annotations

import pytest

from api_support import *  # noqa: F401,F403 -- fixtures
from api_support import bearer, make_agent
from gateway.auth.keys import create_key
from gateway.dialer import contacts
from gateway.models import Call, CampaignAction, CampaignContact

BASE = "/api/agent-api/voice"
ALL = ["voice:read", "voice:write", "voice:campaign:write", "voice:campaign:execute"]
BODY = {"name": "Renewals", "calls_per_second": 2, "max_concurrent": 3, "max_attempts": 2,
        "retry_backoff_seconds": 60, "calling_window": {"days": [1, 2, 3, 4, 5], "start": "09:00", "end": "20:00"},
        "timezone": "America/New_York"}


def key(account, scopes=ALL, owner=None):
    return bearer(create_key(account, scopes, owner_agent=owner)[1])


@pytest.fixture
def agent_x(account_a):
    return make_agent(account_a, key="x", name="X")


@pytest.fixture
def agent_y(account_a):
    return make_agent(account_a, key="y", name="Y")


def create(client, headers, agent, **changes):
    response = client.post(f"{BASE}/campaigns", json={**BODY, "agent_id": str(agent.id), **changes}, headers=headers)
    assert response.status_code == 201, response.json
    return response.json


def test_a_campaign_is_created_read_and_listed(client, account_a, agent_x):
    headers = key(account_a)
    campaign = create(client, headers, agent_x)
    assert campaign["status"] == "draft" and campaign["from_number"] == CALLER_ID
    assert campaign["calling_window"] == BODY["calling_window"] and campaign["timezone"] == "America/New_York"
    assert campaign["agent_id"] == str(agent_x.id) and campaign["owner_agent_id"] is None
    assert client.get(f"{BASE}/campaigns/{campaign['id']}", headers=headers).json == campaign
    listed = client.get(f"{BASE}/campaigns?limit=1", headers=headers).json
    assert listed["total"] == 1 and listed["campaigns"] == [campaign] and listed["limit"] == 1
    minimal = create(client, headers, agent_x, calling_window={"days": [6, 7]})
    assert minimal["calling_window"] == {"days": [6, 7], "start": "00:00", "end": "24:00"}


@pytest.mark.parametrize("changes, message", [
    ({"surprise": 1}, "surprise: Unknown field"),
    ({"name": 5}, "name: Not a valid string"),
    ({"max_concurrent": "3"}, "max_concurrent: Not a valid integer"),
    ({"max_attempts": 11}, "max_attempts"),
    ({"calls_per_second": 0}, "calls_per_second"),
    ({"calling_window": {"days": [8]}}, "calling_window"),
    ({"calling_window": {"start": "9am"}}, "calling_window"),
    ({"calling_window": {"start": "09:00", "end": "09:00"}}, "must differ"),
    ({"timezone": "Mars/Olympus"}, "unknown time zone"),
    ({"from_number": "12"}, "from_number"),
    ({"agent_id": "x1"}, "agent_id"),
])
def test_bad_campaign_bodies_are_400s_that_say_why(client, account_a, agent_x, changes, message):
    response = client.post(f"{BASE}/campaigns", json={**BODY, "agent_id": str(agent_x.id), **changes},
                           headers=key(account_a))
    assert response.status_code == 400 and message in response.json["error"], response.json
    assert list(response.json) == ["error"]


def test_an_agent_of_another_account_or_owner_is_not_found(client, account_a, account_b, agent_x, agent_y):
    other = make_agent(account_b, key="z", name="Z")
    for headers, agent in ((key(account_a), other), (key(account_a, owner=agent_x), agent_y)):
        response = client.post(f"{BASE}/campaigns", json={**BODY, "agent_id": str(agent.id)}, headers=headers)
        assert response.status_code == 404 and response.json == {"error": "Agent not found"}


def test_contacts_are_loaded_row_by_row_with_duplicates_and_do_not_call_counted(gw, client, account_a, agent_x):
    headers = key(account_a)
    campaign = create(client, headers, agent_x)
    with gw.db.atomic():
        contacts.block(account_a, "+12125550142")
    rows = [
        {"phone": "(212) 555-0140", "name": "Ada", "variables": {"plan": "gold", "age": 41, "vip": True}},
        {"phone": "+12125550141"},
        {"phone": "+1 212 555 0141"},  # the same number again
        {"phone": "+12125550142"},  # on the do-not-call list
        {"phone": "not a number"},
        {"phone": "+12125550143", "colour": "red"},
        "+12125550144",
        {"phone": "+12125550145", "variables": {"nested": {"no": 1}}},
        {"name": "nobody"},
    ]
    response = client.post(f"{BASE}/campaigns/{campaign['id']}/contacts", json={"contacts": rows}, headers=headers)
    assert response.status_code == 200, response.json
    report = response.json
    assert report["loaded"] == 3 and report["duplicates_skipped"] == 1 and report["do_not_call"] == 1
    rejected = {row["index"]: row for row in report["rejected"]}
    assert sorted(rejected) == [4, 5, 6, 7, 8]
    assert rejected[4]["phone"] == "not a number" and rejected[4]["reason"]
    assert "colour" in rejected[5]["reason"] and "object" in rejected[6]["reason"]
    assert "variables.nested" in rejected[7]["reason"] and "phone" in rejected[8]["reason"]

    again = client.post(f"{BASE}/campaigns/{campaign['id']}/contacts",
                        json={"contacts": [{"phone": "+12125550140"}, {"phone": "+12125550146"}]}, headers=headers)
    assert again.json["loaded"] == 1 and again.json["duplicates_skipped"] == 1

    listed = client.get(f"{BASE}/campaigns/{campaign['id']}/contacts?limit=2", headers=headers).json
    assert listed["total"] == 4 and len(listed["contacts"]) == 2
    first = listed["contacts"][0]
    assert first["phone"] == "+12125550140" and first["name"] == "Ada" and first["state"] == "pending"
    assert first["variables"] == {"plan": "gold", "age": 41, "vip": True} and first["timezone"] == "America/New_York"
    blocked = client.get(f"{BASE}/campaigns/{campaign['id']}/contacts?state=do_not_call", headers=headers).json
    assert [c["phone"] for c in blocked["contacts"]] == ["+12125550142"]
    assert client.get(f"{BASE}/campaigns/{campaign['id']}", headers=headers).json["contacts"] == {
        "pending": 3, "do_not_call": 1}
    bad_state = client.get(f"{BASE}/campaigns/{campaign['id']}/contacts?state=sleeping", headers=headers)
    assert bad_state.status_code == 400 and "state" in bad_state.json["error"]


def test_more_than_5000_contacts_in_one_request_is_a_400(client, account_a, agent_x):
    headers = key(account_a)
    campaign = create(client, headers, agent_x)
    rows = [{"phone": f"+1212{2000000 + i:07d}"} for i in range(5001)]
    response = client.post(f"{BASE}/campaigns/{campaign['id']}/contacts", json={"contacts": rows}, headers=headers)
    assert response.status_code == 400 and "5000" in response.json["error"]
    assert CampaignContact.select().count() == 0
    empty = client.post(f"{BASE}/campaigns/{campaign['id']}/contacts", json={"contacts": []}, headers=headers)
    assert empty.status_code == 400
    assert client.post(f"{BASE}/campaigns/{campaign['id']}/contacts", json={"contacts": rows[:5000]},
                       headers=headers).json["loaded"] == 5000


def test_a_start_request_waits_for_approval_and_places_no_call(gw, client, account_a, agent_x):
    headers = key(account_a)
    campaign = create(client, headers, agent_x)
    client.post(f"{BASE}/campaigns/{campaign['id']}/contacts", json={"contacts": [{"phone": "+12125550140"}]},
                headers=headers)
    for kind in ("start", "pause", "stop"):
        response = client.post(f"{BASE}/campaigns/{campaign['id']}/{kind}", headers=headers)
        assert response.status_code == 202
        assert response.json["status"] == "awaiting_approval" and response.json["kind"] == kind
        action = client.get(f"{BASE}/actions/{response.json['action_id']}", headers=headers).json
        assert action["status"] == "awaiting_approval" and action["campaign_id"] == campaign["id"]
        assert [step["status"] for step in action["history"]] == ["awaiting_approval"]
        assert action["requested_by"].startswith("API key")
    assert gw.dialer.tick() == 0 and Call.select().count() == 0
    assert client.get(f"{BASE}/campaigns/{campaign['id']}", headers=headers).json["status"] == "draft"


def test_no_endpoint_approves_or_rejects_whatever_the_scopes(client, account_a, agent_x):
    headers = key(account_a, ALL + ["voice:read:all"])
    campaign = create(client, headers, agent_x)
    action_id = client.post(f"{BASE}/campaigns/{campaign['id']}/start", headers=headers).json["action_id"]
    for method, path in (("post", f"/actions/{action_id}/approve"), ("post", f"/actions/{action_id}/reject"),
                         ("post", f"/actions/{action_id}"), ("patch", f"/actions/{action_id}"),
                         ("put", f"/actions/{action_id}"), ("delete", f"/actions/{action_id}"),
                         ("post", f"/campaigns/{campaign['id']}/approve")):
        response = getattr(client, method)(f"{BASE}{path}", json={"status": "approved"}, headers=headers)
        assert response.status_code in (404, 405), (method, path)
    assert CampaignAction.get_by_id(int(action_id)).status == "awaiting_approval"
    document = client.get("/openapi.json").json
    assert not [p for p in document["paths"] if p.startswith(BASE) and ("approv" in p or "reject" in p)]
    ours = {path: sorted(ops) for path, ops in document["paths"].items()
            if path.startswith((f"{BASE}/campaigns", f"{BASE}/actions"))}
    assert ours == {
        f"{BASE}/campaigns": ["get", "post"],
        f"{BASE}/campaigns/{{campaign_id}}": ["get", "parameters"],
        f"{BASE}/campaigns/{{campaign_id}}/contacts": ["get", "parameters", "post"],
        f"{BASE}/campaigns/{{campaign_id}}/start": ["parameters", "post"],
        f"{BASE}/campaigns/{{campaign_id}}/pause": ["parameters", "post"],
        f"{BASE}/campaigns/{{campaign_id}}/stop": ["parameters", "post"],
        f"{BASE}/actions/{{action_id}}": ["get", "parameters"],
    }


ENDPOINTS = [
    ("get", "/campaigns", "voice:read"),
    ("get", "/campaigns/{c}", "voice:read"),
    ("post", "/campaigns", "voice:campaign:write"),
    ("post", "/campaigns/{c}/contacts", "voice:campaign:write"),
    ("get", "/campaigns/{c}/contacts", "voice:read"),
    ("post", "/campaigns/{c}/start", "voice:campaign:execute"),
    ("post", "/campaigns/{c}/pause", "voice:campaign:execute"),
    ("post", "/campaigns/{c}/stop", "voice:campaign:execute"),
    ("get", "/actions/{a}", "voice:read"),
]


@pytest.mark.parametrize("method, path, scope", ENDPOINTS)
def test_a_key_without_the_scope_is_refused_with_a_403_naming_it(client, account_a, agent_x, method, path, scope):
    owner = key(account_a)
    campaign = create(client, owner, agent_x)
    action = client.post(f"{BASE}/campaigns/{campaign['id']}/start", headers=owner).json["action_id"]
    lacking = key(account_a, [s for s in ALL if s != scope])
    url = BASE + path.format(c=campaign["id"], a=action)
    response = getattr(client, method)(url, json={} if method == "post" and "contacts" in path or path == "/campaigns"
                                       and method == "post" else None, headers=lacking)
    assert response.status_code == 403 and scope in response.json["error"], response.json


def test_ownership_isolation_for_every_resource_and_verb(client, account_a, account_b, agent_x, agent_y):
    kx, ky = key(account_a, owner=agent_x), key(account_a, owner=agent_y)
    k_all = key(account_a, ALL + ["voice:read:all"], owner=agent_x)
    k_account, k_other = key(account_a), key(account_b, ALL + ["voice:read:all"])
    cx, cy = create(client, kx, agent_x), create(client, ky, agent_y)
    assert cx["owner_agent_id"] == str(agent_x.id)
    ay = client.post(f"{BASE}/campaigns/{cy['id']}/start", headers=ky).json["action_id"]
    listed = lambda headers: {c["id"] for c in client.get(f"{BASE}/campaigns", headers=headers).json["campaigns"]}  # noqa: E731
    assert listed(kx) == {cx["id"]} and listed(ky) == {cy["id"]}
    assert listed(k_all) == listed(k_account) == {cx["id"], cy["id"]} and listed(k_other) == set()

    contact = {"contacts": [{"phone": "+12125550140"}]}
    reads = [("get", f"/campaigns/{cy['id']}", None), ("get", f"/campaigns/{cy['id']}/contacts", None),
             ("get", f"/actions/{ay}", None)]
    writes = [("post", f"/campaigns/{cy['id']}/contacts", contact)] + [
        ("post", f"/campaigns/{cy['id']}/{kind}", None) for kind in ("start", "pause", "stop")]
    for method, path, body in reads + writes:
        for headers in (kx, k_other):
            response = getattr(client, method)(BASE + path, json=body, headers=headers)
            assert response.status_code == 404, (method, path, response.json)
            assert response.json["error"] in ("Campaign not found", "Action not found")
    for method, path, body in reads:
        assert getattr(client, method)(BASE + path, headers=k_all).status_code == 200, path
        assert getattr(client, method)(BASE + path, headers=k_account).status_code == 200, path
    for method, path, body in writes:  # reading across owners never writes
        assert getattr(client, method)(BASE + path, json=body, headers=k_all).status_code == 404, path
    assert CampaignContact.select().count() == 0
    assert CampaignAction.select().count() == 1
    assert client.post(f"{BASE}/campaigns/{cy['id']}/contacts", json=contact, headers=k_account).status_code == 200
    for unknown in ("999999", "abc", "0"):
        assert client.get(f"{BASE}/campaigns/{unknown}", headers=k_account).status_code == 404
        assert client.get(f"{BASE}/actions/{unknown}", headers=k_account).status_code == 404

"""``voicegw approvals`` and ``voicegw do-not-call``: a start an API key requested places no
call until a person approves it here, then the dialer begins; a rejected one dials nothing."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from decimal import Decimal

from api_support import *  # noqa: F401,F403 -- fixtures
from api_support import bearer, make_agent
from cli_support import cli  # noqa: F401 -- fixture
from dialer_support import originates, wait_until
from gateway.auth.keys import create_key
from gateway.dialer import approvals, campaigns
from gateway.models import Account, Call, CallRate
from gateway.simulator.outcomes import Outcome

BASE = "/api/agent-api/voice"
PHONES = ["+12125550140", "+12125550141", "+442071234567"]


def voicegw(database_url, *argv):
    """Run a command as a person on the gateway's host does, in a process of its own while
    the gateway runs (its JSON output)."""
    env = {**os.environ, "GATEWAY_DATABASE_URL": database_url}
    env.pop("GATEWAY_CONFIG", None)
    result = subprocess.run([sys.executable, "-m", "gateway.cli", *argv, "--json"], env=env, capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def requested(client, account, kind="start"):
    agent = make_agent(account, key=f"closer{kind}", name="Closer")
    headers = bearer(create_key(account, ["voice:read", "voice:campaign:write", "voice:campaign:execute"],
                                name="ops-bot", owner_agent=agent)[1])
    campaign = client.post(f"{BASE}/campaigns", json={"name": "Renewals", "agent_id": str(agent.id)},
                           headers=headers).json
    client.post(f"{BASE}/campaigns/{campaign['id']}/contacts",
                json={"contacts": [{"phone": p} for p in PHONES]}, headers=headers)
    action = client.post(f"{BASE}/campaigns/{campaign['id']}/{kind}", headers=headers).json
    return campaign, action["action_id"], headers


def test_a_start_places_no_call_until_a_person_approves_it(gw, sim, client, database_url, account_a):
    for phone in PHONES:
        sim.set_outcome(phone, Outcome(final=200, hangup_after=0.2))
    CallRate.create(account=account_a, prefix="+1", per_minute=Decimal("0.02"), pulse_sec=60)
    CallRate.create(account=account_a, prefix="+44", per_minute=Decimal("0.10"), pulse_sec=60)
    campaign, action_id, headers = requested(client, account_a)

    listed = voicegw(database_url, "approvals", "list")["actions"]
    assert [(a["id"], a["kind"], a["status"]) for a in listed] == [(action_id, "start", "awaiting_approval")]
    shown = voicegw(database_url, "approvals", "show", action_id)
    assert shown["campaign"]["name"] == "Renewals" and shown["agent"]["key"] == "closerstart"
    assert shown["contacts_not_yet_called"] == 3
    assert shown["estimated_cost"]["amount"] == "0.1400" and shown["estimated_cost"]["currency"] == "USD"
    assert shown["calling_window"]["days"] == [1, 2, 3, 4, 5, 6, 7]
    assert "ops-bot" in shown["requested_by"]

    assert gw.dialer.tick() == 0 and Call.select().count() == 0 and not originates(sim)
    approved = voicegw(database_url, "approvals", "approve", action_id, "--by", "Dana (ops)")
    assert approved["status"] == "executed" and approved["decided_by"] == "Dana (ops)"
    assert [step["status"] for step in approved["history"]] == ["awaiting_approval", "approved", "executed"]
    wait_until(lambda: set(originates(sim)) == set(PHONES), 10, "the dialer to call every contact")
    action = client.get(f"{BASE}/actions/{action_id}", headers=headers).json
    assert action["status"] == "executed" and action["history"][1]["by"] == "Dana (ops)"


def test_a_rejected_start_dials_nothing(gw, sim, client, database_url, account_a):
    campaign, action_id, headers = requested(client, account_a)
    rejected = voicegw(database_url, "approvals", "reject", action_id, "--by", "Dana", "--reason", "list not vetted")
    assert rejected["status"] == "rejected" and rejected["reason"] == "list not vetted"
    assert gw.dialer.tick() == 0 and not originates(sim)
    action = client.get(f"{BASE}/actions/{action_id}", headers=headers).json
    assert action["status"] == "rejected" and action["reason"] == "list not vetted"
    assert client.get(f"{BASE}/campaigns/{campaign['id']}", headers=headers).json["status"] == "draft"
    assert voicegw(database_url, "approvals", "list")["actions"] == []
    assert [a["status"] for a in voicegw(database_url, "approvals", "list", "--status", "all")["actions"]] == [
        "rejected"]


def _request(kind="start"):
    """An action awaiting approval, requested by an owner agent's key (no gateway running)."""
    account = Account.create(name="acme", region="US", default_caller_id="+12125550100")
    agent = make_agent(account, key="closer", name="Closer")
    api_key, _ = create_key(account, ["voice:campaign:execute"], owner_agent=agent)
    settings = campaigns.clean_settings(account, agent, name="Renewals", from_number=None, window=None,
                                        timezone=None)
    campaign = campaigns.create(account, settings, agent.id)
    return str(approvals.request(campaign, kind, api_key).id)


def test_show_prints_what_an_approver_sees(cli):
    action_id = _request()
    text = cli("approvals", "show", action_id)
    assert f"action {action_id}: start campaign" in text and "contacts not yet called: 0" in text
    assert "estimated cost: 0.0000 USD" in text and "awaiting_approval" in text


def test_a_pause_of_a_draft_fails_with_its_reason(cli):
    action_id = _request("pause")
    failed = cli.json("approvals", "approve", action_id, "--by", "Dana")
    assert failed["status"] == "failed" and "only a running campaign pauses" in failed["reason"]
    cli.fails("approvals", "approve", action_id, "--by", "Eve", match="failed already")


def test_bad_decisions_are_refused(cli):
    action_id = _request()
    cli.fails("approvals", "approve", "999", "--by", "Dana", match="no campaign action")
    cli.fails("approvals", "approve", "abc", "--by", "Dana", match="no campaign action")
    cli.fails("approvals", "approve", action_id, "--by", " ", match="approver's name")
    cli.fails("approvals", "reject", action_id, "--by", "Dana", "--reason", " ", match="needs a reason")
    cli.fails("approvals", "list", "--account", "nobody", match="no account")
    assert cli.json("approvals", "show", action_id)["status"] == "awaiting_approval"


def test_the_do_not_call_list(cli):
    account_a = Account.create(name="acme", region="US")
    added = cli.json("do-not-call", "add", "acme", "(212) 555-0140", "--note", "asked twice")
    assert added == {"account": account_a.id, "number": "+12125550140", "added": True}
    assert cli.json("do-not-call", "add", "acme", "+12125550140")["added"] is False
    listed = cli.json("do-not-call", "list", "acme")["numbers"]
    assert [(n["number"], n["note"]) for n in listed] == [("+12125550140", "asked twice")]
    cli.fails("do-not-call", "add", "acme", "12", match="12")
    assert cli.json("do-not-call", "remove", "acme", "+12125550140")["removed"] is True
    cli.fails("do-not-call", "remove", "acme", "+12125550140", match="not on the do-not-call list")

"""Where an account may transfer calls (``gateway.calls.transfer_policy``): the rules, the
403 of ``POST /api/calls/transfer`` with nothing sent to FreeSWITCH, the CLI settings, and
press-1 ``connect_agent`` to an agent destination the policy no longer allows."""
from __future__ import annotations

import pytest

from gateway.calls.transfer_policy import (
    TransferPolicy, TransferRefused, clean_number_rules, clean_sip_domains, transfer_destination,
)
from gateway.calls.states import FINAL, Status
from gateway.models import Account, CallEvent, PublicRun
from gateway.simulator.outcomes import Outcome
from test_admin_cli import cli  # noqa: F401 -- fixture
from test_public_support import *  # noqa: F401,F403 -- fixtures
from test_public_support import BASE, auth, wait_final, wait_script
from api_support import account_a, headers, key_a  # noqa: F401 -- fixtures

INTERNAL_SIP = ["sip:a@127.0.0.1", "sip:a@169.254.169.254", "sip:a@10.0.0.1", "sips:a@10.0.0.1:5061",
                "sip:admin@localhost", "sip:1000@192.168.1.1:5080", "sip:a@2130706433", "SIP:a@127.0.0.1"]


# -- the rules -------------------------------------------------------------------------------------


def test_by_default_any_e164_number_and_nothing_else():
    policy = TransferPolicy()
    assert policy.check("+14155550123") == "+14155550123"
    assert policy.check("+919812345678") == "+919812345678"
    for destination in INTERNAL_SIP + ["sip:alice@pbx.example.com"]:
        with pytest.raises(TransferRefused, match="is not one of the account's transfer SIP domains"):
            policy.check(destination)
    with pytest.raises(TransferRefused, match="extension '1000' is not allowed"):
        policy.check("1000")
    with pytest.raises(TransferRefused, match="expected an E.164 number"):
        policy.check("gateway_park")  # a name the transfer context knows: never a customer's target


def test_number_rules_prefixes_ranges_and_extensions():
    policy = TransferPolicy(tuple(clean_number_rules("+1, +4420, +919812345600-+919812345699, 1000-1099, 2000")))
    for allowed in ("+14155550123", "+442071234567", "+919812345600", "+919812345699", "1000", "1050", "2000"):
        assert policy.check(allowed) == allowed
    for refused in ("+447911123456", "+919812345700", "+91981234560", "999", "1100", "2001", "+33123456789"):
        with pytest.raises(TransferRefused):
            policy.check(refused)
    ranged = TransferPolicy(tuple(clean_number_rules("2000-3000")))
    assert ranged.check("3000") == "3000" and ranged.check("2999") == "2999"


def test_sip_domains_exact_and_wildcard():
    policy = TransferPolicy(sip_domains=tuple(clean_sip_domains("pbx.acme.com, *.acme.net, 203.0.113.7")))
    for allowed in ("sip:desk@pbx.acme.com", "sips:desk@PBX.acme.com:5061", "sip:a@eu.sip.acme.net",
                    "sip:a@203.0.113.7"):
        assert policy.check(allowed) == allowed
    for refused in ("sip:a@acme.net", "sip:a@evilacme.net", "sip:a@pbx.acme.com.evil.io", "sip:a@203.0.113.8",
                    "sip:a@127.0.0.1"):
        with pytest.raises(TransferRefused):
            policy.check(refused)


def test_what_cannot_be_transferred_at_all_is_a_value_error_first():
    with pytest.raises(ValueError, match="not a SIP URI the gateway can transfer to") as refused:
        TransferPolicy(sip_domains=("pbx.acme.com",)).check("sip:a@pbx.acme.com;transport=tcp")
    assert not isinstance(refused.value, TransferRefused)


@pytest.mark.parametrize("text, message", [
    ("", "no transfer number rule"), ("+1x", "rule '\\+1x' is invalid"), ("12", "rule '12' is invalid"),
    ("+1-+22", "range '\\+1-\\+22' is invalid"), ("1099-1000", "the lower first"), ("100-1000", "one kind and length"),
    ("+14155550100-1099", "one kind"), ("+1234567890123456", "is invalid"),
])
def test_bad_number_rules(text, message):
    with pytest.raises(ValueError, match=message):
        clean_number_rules(text)


@pytest.mark.parametrize("text", ["", "pbx..acme.com", "-pbx.acme.com", "pbx acme.com", "*", "a.*.com", "x@y"])
def test_bad_sip_domains(text):
    with pytest.raises(ValueError):
        clean_sip_domains(text)


def test_destinations_are_read_as_the_api_reads_them():
    assert transfer_destination(" sip:a@pbx.acme.com ", "US") == "sip:a@pbx.acme.com"
    assert transfer_destination("1000", "US") == "1000"
    assert transfer_destination("(212) 555-0177", "US") == "+12125550177"
    assert transfer_destination("098123 45678", "IN") == "+919812345678"


# -- POST /api/calls/transfer ----------------------------------------------------------------------


@pytest.fixture
def live_call(client, gw, key_a):  # noqa: F811
    call_uuid = client.post("/api/calls", json={"destination_number": "+12125550101"},
                            headers=headers(key_a)).json["call_uuid"]
    gw.controller.wait_status(call_uuid, [Status.IN_PROGRESS], 5)
    yield call_uuid
    client.post("/api/calls/hangup", json={"call_uuid": call_uuid}, headers=headers(key_a))
    gw.controller.wait_status(call_uuid, FINAL, 5)


def transfer(client, key, call_uuid, destination):
    return client.post("/api/calls/transfer", json={"call_uuid": call_uuid, "destination_number": destination},
                       headers=headers(key))


def commands_sent(gw, call_uuid):
    gw.controller.flush()
    return [e.detail for e in CallEvent.select().where(CallEvent.call == call_uuid, CallEvent.kind == "command")]


@pytest.mark.parametrize("destination", INTERNAL_SIP + ["1000", "sip:alice@pbx.example.com"])
def test_transfer_to_what_the_policy_does_not_allow_is_403_and_reaches_no_switch(client, gw, sim, key_a, live_call,
                                                                                 destination):
    response = transfer(client, key_a, live_call, destination)
    assert response.status_code == 403, response.json
    assert list(response.json) == ["error"] and "not allowed" in response.json["error"]
    assert [c for c in commands_sent(gw, live_call) if c["command"] in ("setvar", "transfer")] == []
    assert "gateway_transfer_uri" not in sim.channels[live_call].variables
    assert sim.channels[live_call].destination_number != destination


def test_transfer_within_the_policy(client, gw, sim, key_a, account_a, live_call):  # noqa: F811
    assert transfer(client, key_a, live_call, "+442071234567").status_code == 200  # default: any E.164 number
    Account.update(transfer_numbers=["+1"], transfer_sip_domains=["*.example.com"]).where(
        Account.id == account_a.id).execute()
    refused = transfer(client, key_a, live_call, "+442071234567")
    assert refused.status_code == 403
    assert refused.json == {"error": "transfer to +442071234567 is not allowed: not in the account's transfer numbers"}
    assert transfer(client, key_a, live_call, "(212) 555-0177").status_code == 200
    assert transfer(client, key_a, live_call, "sip:alice@pbx.example.com").status_code == 200
    sim.wait_for(lambda: sim.channels[live_call].variables.get("gateway_transfer_uri") == "sip:alice@pbx.example.com",
                 timeout=5)
    assert transfer(client, key_a, live_call, "sip:alice@10.0.0.1").status_code == 403
    assert [c["destination"] for c in commands_sent(gw, live_call) if c["command"] == "transfer"] == [
        "+442071234567", "+12125550177", "sip:alice@pbx.example.com"]


# -- the CLI ------------------------------------------------------------------------------------------


def test_accounts_set_the_transfer_policy(cli):  # noqa: F811
    cli("accounts", "create", "acme")
    doc = cli.json("accounts", "show", "acme")
    assert (doc["transfer_numbers"], doc["transfer_sip_domains"]) == (["+"], [])
    doc = cli.json("accounts", "set", "acme", "--transfer-numbers", "+1, 1000-1099",
                   "--transfer-sip-domains", "PBX.acme.com,*.acme.net")
    assert doc["changed"] == ["transfer_numbers", "transfer_sip_domains"]
    account = Account.get(Account.name == "acme")
    assert (account.transfer_numbers, account.transfer_sip_domains) == (["+1", "1000-1099"],
                                                                         ["pbx.acme.com", "*.acme.net"])
    assert "transfer sip domains:  pbx.acme.com, *.acme.net" in cli("accounts", "show", "acme")
    cli.fails("accounts", "set", "acme", "--transfer-numbers", "+1,abc", match="rule 'abc' is invalid")
    cli.fails("accounts", "set", "acme", "--transfer-sip-domains", "evil .com", match="SIP domain 'evil .com'")
    assert Account.get(Account.name == "acme").transfer_numbers == ["+1", "1000-1099"]
    cli("accounts", "set", "acme", "--transfer-numbers", "", "--transfer-sip-domains", "")  # back to the defaults
    account = Account.get(Account.name == "acme")
    assert (account.transfer_numbers, account.transfer_sip_domains) == (None, None)


def test_accounts_set_what_a_failed_transfer_does(cli):  # noqa: F811
    cli("accounts", "create", "acme")
    assert cli.json("accounts", "show", "acme")["on_transfer_failure"] == "bot"
    doc = cli.json("accounts", "set", "acme", "--on-transfer-failure", "HangUp")
    assert (doc["changed"], doc["on_transfer_failure"]) == (["on_transfer_failure"], "hangup")
    assert "on transfer failure:   hangup" in cli("accounts", "show", "acme")
    cli.fails("accounts", "set", "acme", "--on-transfer-failure", "voicemail",
              match="on transfer failure 'voicemail' is invalid; expected bot")
    assert Account.get(Account.name == "acme").on_transfer_failure == "hangup"


# -- press-1 connect_agent -------------------------------------------------------------------------


def test_an_agent_destination_the_policy_refuses_is_not_used(client, gw, sim, pair, india, clip):
    Account.update(transfer_numbers=None).where(Account.id == india.id).execute()  # "1000" is not allowed now
    response = client.post(f"{BASE}/calls", json={"type": "press1", "number": "9812345678", "audio_id": clip.id},
                           headers=auth(pair))
    assert (response.status_code, response.json["details"]) == (
        400, "No agent destination is configured for this account. Please contact support.")


def test_connect_agent_rechecks_the_policy_when_the_call_is_answered(client, gw, sim, pair, india, clip):
    sim.set_outcome("+919812345670", Outcome(delay=1.0))  # answers a second after the request
    response = client.post(f"{BASE}/calls", json={"type": "press1", "number": "9812345670", "audio_id": clip.id},
                           headers=auth(pair))
    assert response.status_code == 200, response.json
    Account.update(transfer_numbers=["+"]).where(Account.id == india.id).execute()  # tightened meanwhile
    run = PublicRun.get()
    sim.wait_event(run.call_uuid, "PLAYBACK_START", timeout=5)
    sim.press(run.call_uuid, "1")
    script = wait_script(gw, run.call_uuid)
    assert script.steps == ["record_session", "play_and_get_digits"]  # no transfer: hung up
    assert wait_final(gw, run.call_uuid).status == "completed"
    assert [c for c in commands_sent(gw, run.call_uuid) if c["command"] == "transfer"] == []

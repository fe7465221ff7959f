"""``/api``: live call control against the simulator, on SQLite and PostgreSQL."""

from __future__ import annotations

import uuid

import gevent
import pytest

from api_support import *  # noqa: F401,F403 -- fixtures
from api_support import CALLER_ID, DEFAULT_SOCKET, FINAL, Status, bearer, headers, make_agent
from gateway.auth.keys import create_key
from gateway.models import Account, Call, CallEvent, PhoneNumber


def place(client, key, **body):
    body.setdefault("destination_number", "+12125550101")
    return client.post("/api/calls", json=body, headers=headers(key))


def status_log(call_uuid):
    return [e.to_status for e in CallEvent.select().where(
        CallEvent.call == call_uuid, CallEvent.kind == "status").order_by(CallEvent.seq)]


def test_place_read_and_hang_up_a_call(client, gw, sim, key_a, account_a):
    response = place(client, key_a, destination_number="(212) 555-0101", caller_id_name="Acme Support",
                     socket_url="wss://bot.acme.example/media")
    assert response.status_code == 200, response.json
    assert response.json["status"] == "queued"
    call_uuid = response.json["call_uuid"]
    row = Call.get_by_id(call_uuid)
    assert (row.to_number, row.from_number, row.caller_id_name) == ("+12125550101", CALLER_ID, "Acme Support")
    assert (row.socket_url, row.webhook_url, row.surface, row.account_id) == (
        "wss://bot.acme.example/media", None, "api", account_a.id)

    gw.controller.wait_status(call_uuid, [Status.IN_PROGRESS], 5)
    assert sim.channels[call_uuid].variables["origination_caller_id_name"] == "Acme Support"
    read = client.get(f"/api/calls/{call_uuid}", headers=headers(key_a))
    assert read.status_code == 200
    assert read.json["status"] == "in-progress"
    assert read.json["destination_number"] == "+12125550101"
    assert read.json["answered_at"].endswith("Z") and read.json["ended_at"] is None
    assert client.get(f"/api/calls/{call_uuid.upper()}", headers=headers(key_a)).json["call_uuid"] == call_uuid

    hangup = client.post("/api/calls/hangup", json={"call_uuid": call_uuid}, headers=headers(key_a))
    assert hangup.status_code == 200
    assert hangup.json == {"call_uuid": call_uuid, "action": "hangup", "status": "in-progress"}
    assert gw.controller.wait_status(call_uuid, FINAL, 5) is Status.COMPLETED
    final = client.get(f"/api/calls/{call_uuid}", headers=bearer(key_a)).json
    assert final["status"] == "completed" and final["hangup_cause"] == "NORMAL_CLEARING"
    assert final["ended_at"] is not None and final["duration"] >= 0
    assert status_log(call_uuid) == ["ringing", "in_progress", "completed"]

    again = client.post("/api/calls/hangup", json={"call_uuid": call_uuid}, headers=headers(key_a))
    assert again.status_code == 409
    assert again.json == {"error": "call has already ended (completed)"}


@pytest.mark.parametrize("number, status", [
    ("+12125550486", "busy"),
    ("+12125550603", "busy"),
    ("+12125550480", "no-answer"),
])
def test_unanswered_calls_end_in_the_contract_vocabulary(client, gw, key_a, number, status):
    gw.controller.originate_timeout = 1
    call_uuid = place(client, key_a, destination_number=number).json["call_uuid"]
    gw.controller.wait_status(call_uuid, FINAL, 10)
    assert client.get(f"/api/calls/{call_uuid}", headers=headers(key_a)).json["status"] == status


def test_socket_url_forms_are_stored_as_given(client, key_a, account_a):
    Account.update(elevenlabs_agent_id="agent_abc", vapi_assistant_id="asst-1", vapi_api_key="vapi-key").where(
        Account.id == account_a.id).execute()
    for form, stored in [("elevenlabs", "elevenlabs"), ("vapi", "vapi"),
                         ("elevenlabs&tVvN3xAbc", "elevenlabs&tVvN3xAbc"), ("vapi&abc-123", "vapi&abc-123"),
                         ("ElevenLabs&tVvN3xAbc", "elevenlabs&tVvN3xAbc"), ("ws://93.184.215.14:8080/bot", None)]:
        response = place(client, key_a, socket_url=form)
        assert response.status_code == 200, (form, response.json)
        assert Call.get_by_id(response.json["call_uuid"]).socket_url == (stored or form)


def test_defaults_and_webhook_routing(client, key_a, account_a):
    # Neither given: the account's defaults.
    call = Call.get_by_id(place(client, key_a).json["call_uuid"])
    assert (call.socket_url, call.webhook_url) == (DEFAULT_SOCKET, None)
    # webhook_url alone: the routing webhook decides, no default socket.
    call = Call.get_by_id(place(client, key_a, webhook_url="https://my-api.example/route").json["call_uuid"])
    assert (call.socket_url, call.webhook_url) == (None, "https://my-api.example/route")
    # Both, as the contract's example body sends them.
    call = Call.get_by_id(place(client, key_a, socket_url="wss://b.example/m",
                                webhook_url="https://my-api.example/route").json["call_uuid"])
    assert (call.socket_url, call.webhook_url) == ("wss://b.example/m", "https://my-api.example/route")
    # null means "not given".
    call = Call.get_by_id(place(client, key_a, socket_url=None, caller_id_number=None).json["call_uuid"])
    assert (call.socket_url, call.from_number) == (DEFAULT_SOCKET, CALLER_ID)
    # No default at all.
    Account.update(default_socket_url=None, default_webhook_url=None).where(Account.id == account_a.id).execute()
    response = place(client, key_a)
    assert response.status_code == 400
    assert response.json == {"error": "socket_url or webhook_url is required: the account has no default for either"}
    Account.update(default_caller_id=None, default_socket_url=DEFAULT_SOCKET).where(
        Account.id == account_a.id).execute()
    response = place(client, key_a)
    assert response.status_code == 400
    assert response.json == {"error": "caller_id_number is required: the account has no default caller ID"}
    ok = place(client, key_a, caller_id_number="212-555-0199")
    assert Call.get_by_id(ok.json["call_uuid"]).from_number == "+12125550199"


BAD_PLACE_REQUESTS = [
    ({"destination_number": None}, "destination_number: Field may not be null."),
    ({"destination_number": 12125550101}, "destination_number: Not a valid string."),
    ({"destination_number": ""}, "destination_number: Length must be between 1 and 64."),
    ({"destination_number": "12345"}, "destination_number: '12345' is too short for a number in region US"),
    ({"destination_number": "+1555CALLNOW"}, "destination_number: '+1555CALLNOW' is not a phone number:"
                                             " it contains letters"),
    ({"destination_number": "+999123456789"}, "destination_number: '+999123456789' has an unknown country code"),
    ({"caller_id_number": "0"}, "caller_id_number: '0' is not a phone number"),
    ({"caller_id_name": "x" * 65}, "caller_id_name: Longer than maximum length 64."),
    ({"caller_id_name": "evil\x00name"}, "caller_id_name: Must not contain control characters."),
    ({"socket_url": "http://bot.example/x"}, "socket_url: 'http://bot.example/x' is not a valid URL;"
                                             " expected ws://host/… or wss://host/…"),
    ({"socket_url": "elevenlabs&"}, "socket_url: 'elevenlabs&': the id after '&' is invalid;"
                                    " expected 1-128 characters A-Z, a-z, 0-9, '_', '.', ':' or '-'"),
    ({"socket_url": "openai"}, "socket_url: 'openai' is invalid; expected a ws:// or wss:// URL,"
                               " 'elevenlabs', 'vapi', 'elevenlabs&<agent id>' or 'vapi&<assistant id>'"),
    ({"webhook_url": "ftp://x.example/"}, "webhook_url: 'ftp://x.example/' is not a valid URL;"
                                          " expected http://host/… or https://host/…"),
    ({"socketurl": "wss://typo.example/"}, "socketurl: Unknown field."),
]


def test_bad_place_requests_are_400_with_a_clear_message(client, key_a):
    for body, message in BAD_PLACE_REQUESTS:
        body = {"destination_number": "+12125550101", **body}
        response = client.post("/api/calls", json=body, headers=headers(key_a))
        assert (response.status_code, response.json) == (400, {"error": message}), body
    assert Call.select().count() == 0


def test_missing_destination_is_400(client, key_a):
    response = client.post("/api/calls", json={"socket_url": "vapi"}, headers=headers(key_a))
    assert response.status_code == 400
    assert response.json == {"error": "destination_number: Missing data for required field."}


def test_foreign_numbers_are_read_in_the_account_region(client, key_b, account_b):
    # Account B's region is IN: a national Indian number and an international US one.
    response = client.post("/api/calls", json={"destination_number": "9876543210"}, headers=headers(key_b))
    assert Call.get_by_id(response.json["call_uuid"]).to_number == "+919876543210"
    response = client.post("/api/calls", json={"destination_number": "+1 212 555 0101"}, headers=headers(key_b))
    assert Call.get_by_id(response.json["call_uuid"]).to_number == "+12125550101"
    # A US national number is read as an Indian one ...
    response = client.post("/api/calls", json={"destination_number": "2125550101"}, headers=headers(key_b))
    assert Call.get_by_id(response.json["call_uuid"]).to_number == "+912125550101"
    # ... and what is no number in India is refused, naming the region.
    response = client.post("/api/calls", json={"destination_number": "0123456"}, headers=headers(key_b))
    assert response.status_code == 400
    assert response.json == {"error": "destination_number: '0123456' is too short for a number in region IN"
                                      " (no area code?)"}


#: The call-control contract's own example body, verbatim.
CONTRACT_EXAMPLE = {
    "destination_number": "5511999999999",
    "caller_id_number": "5511888888888",
    "caller_id_name": "My Business",
    "socket_url": "wss://my-bot-server.com/media",
    "webhook_url": "https://my-api.com/route-call",
}


@pytest.mark.parametrize("region", ["BR", "US", "IN"])
def test_the_contracts_example_body_places_a_call_from_any_region(client, gw, region):
    # International digits without + are read as E.164 (valid in Brazil whatever the
    # account's region), and the caller ID need only be a possible number: 11 8888-8888
    # is no assigned Brazilian mobile number, but a carrier may well let it through.
    account = Account.create(name=f"acme-{region}", region=region, balance=10)
    key = create_key(account)[1]
    response = client.post("/api/calls", json=CONTRACT_EXAMPLE, headers=headers(key))
    assert response.status_code == 200, response.json
    row = Call.get_by_id(response.json["call_uuid"])
    assert (row.to_number, row.from_number, row.caller_id_name) == ("+5511999999999", "+5511888888888",
                                                                    "My Business")


@pytest.mark.parametrize("body, message", [
    # The destination must be a valid number; the same digits as a caller ID would pass.
    ({"destination_number": "5511888888888"},
     "destination_number: '5511888888888' is not a valid number in region BR"),
    # A caller ID that is not even possible, read either way.
    ({"caller_id_number": "55118888"}, "caller_id_number: '55118888' is too short for a number in region US"),
    ({"caller_id_number": "5511888888888888"}, "caller_id_number: '5511888888888888' is too long for a number"
                                              " in region US"),
    ({"caller_id_number": "+55 11 8888"}, "caller_id_number: '+55 11 8888' is too short for a number in"
                                          " region BR"),
])
def test_numbers_that_are_no_number_either_way_are_400(client, key_a, body, message):
    response = place(client, key_a, socket_url="wss://bot.example.com/media", **body)
    assert (response.status_code, response.json) == (400, {"error": message})
    assert Call.select().count() == 0


def test_transfer_to_number_extension_and_sip_uri(client, gw, sim, key_a, account_a):
    Account.update(transfer_numbers=["+", "1000"], transfer_sip_domains=["pbx.example.com"]).where(
        Account.id == account_a.id).execute()
    call_uuid = place(client, key_a).json["call_uuid"]
    gw.controller.wait_status(call_uuid, [Status.IN_PROGRESS], 5)

    def transfer(destination):
        return client.post("/api/calls/transfer", json={"call_uuid": call_uuid, "destination_number": destination},
                           headers=headers(key_a))

    response = transfer("1000")
    assert response.status_code == 200
    assert response.json == {"call_uuid": call_uuid, "action": "transfer", "status": "in-progress"}
    sim.wait_for(lambda: sim.channels[call_uuid].destination_number == "1000", timeout=5)
    assert transfer("sip:alice@pbx.example.com").status_code == 200
    sim.wait_for(lambda: sim.channels[call_uuid].variables.get("gateway_transfer_uri") == "sip:alice@pbx.example.com",
                 timeout=5)
    bad_uri = transfer("sip:alice@pbx.example.com;transport=tcp")
    assert bad_uri.status_code == 400
    assert "not a SIP URI the gateway can transfer to" in bad_uri.json["error"]
    bad_number = transfer("55")
    assert bad_number.status_code == 400
    assert bad_number.json["error"].startswith("destination_number: '55'")
    # A PSTN number is sent in E.164.
    commands = []
    gw.controller.transfer, original = (lambda uuid, dest: commands.append(dest)), gw.controller.transfer
    try:
        assert transfer("(212) 555-0177").status_code == 200
    finally:
        gw.controller.transfer = original
    assert commands == ["+12125550177"]
    client.post("/api/calls/hangup", json={"call_uuid": call_uuid}, headers=headers(key_a))
    gw.controller.wait_status(call_uuid, FINAL, 5)


def test_redirect_before_answer_stores_the_target(client, gw, sim, key_a, account_a):
    Account.update(elevenlabs_agent_id="agent_abc").where(Account.id == account_a.id).execute()
    call_uuid = place(client, key_a, destination_number="+12125550480").json["call_uuid"]  # never answers
    gw.controller.wait_status(call_uuid, [Status.RINGING], 5)
    response = client.post("/api/calls/redirect", json={"call_uuid": call_uuid, "media_server": "elevenlabs"},
                           headers=headers(key_a))
    assert response.status_code == 200
    assert response.json == {"call_uuid": call_uuid, "action": "redirect", "status": "ringing"}
    assert Call.get_by_id(call_uuid).socket_url == "elevenlabs"
    client.post("/api/calls/hangup", json={"call_uuid": call_uuid}, headers=headers(key_a))
    gw.controller.wait_status(call_uuid, FINAL, 5)
    ended = client.post("/api/calls/redirect", json={"call_uuid": call_uuid, "media_server": "wss://x.example/b"},
                        headers=headers(key_a))
    assert ended.status_code == 409 and ended.json == {"error": "call has already ended (missed)"}


NO_ELEVENLABS_AGENT = ("no ElevenLabs agent id is configured for this account; pass elevenlabs&<agent id>, or set"
                       " one with 'voicegw accounts set-voice ACCOUNT --elevenlabs-agent-id ID' (or for a number,"
                       " 'voicegw numbers set-voice NUMBER --elevenlabs-agent-id ID')")
NO_VAPI_ASSISTANT = ("no Vapi assistant id is configured for this account; pass vapi&<assistant id>, or set one"
                     " with 'voicegw accounts set-voice ACCOUNT --vapi-assistant-id ID' (or for a number,"
                     " 'voicegw numbers set-voice NUMBER --vapi-assistant-id ID')")
NO_VAPI_KEY = ("no Vapi API key is configured for this account; set one with 'voicegw accounts set-voice ACCOUNT"
               " --vapi-api-key-file FILE'")


def test_a_bare_provider_without_its_settings_is_a_400_saying_what_is_missing(client, gw, key_a, account_a):
    for socket_url, message in (("elevenlabs", NO_ELEVENLABS_AGENT), ("vapi", NO_VAPI_ASSISTANT),
                                ("vapi&abc-123", NO_VAPI_KEY)):
        response = place(client, key_a, socket_url=socket_url)
        assert (response.status_code, response.json) == (400, {"error": message}), socket_url
    # The account's default socket_url is held to the same rule.
    Account.update(default_socket_url="elevenlabs").where(Account.id == account_a.id).execute()
    assert place(client, key_a).json == {"error": NO_ELEVENLABS_AGENT}
    assert Call.select().count() == 0
    # An inline id needs no setting (ElevenLabs' public agents need no key either) ...
    assert place(client, key_a, socket_url="elevenlabs&tVvN3xAbc").status_code == 200
    # ... and a redirect is refused the same way, the call's target unchanged.
    call_uuid = place(client, key_a, destination_number="+12125550480",
                      socket_url="wss://bot.example.com/media").json["call_uuid"]  # never answers
    for media_server, message in (("elevenlabs", NO_ELEVENLABS_AGENT), ("vapi", NO_VAPI_ASSISTANT)):
        response = client.post("/api/calls/redirect", json={"call_uuid": call_uuid, "media_server": media_server},
                               headers=headers(key_a))
        assert (response.status_code, response.json) == (400, {"error": message})
    assert Call.get_by_id(call_uuid).socket_url == "wss://bot.example.com/media"
    # Configured on the account, or only on the caller ID's number: accepted.
    PhoneNumber.create(account=account_a, e164=CALLER_ID, route="bot", socket_url="vapi",
                       vapi_assistant_id="asst-num")
    Account.update(vapi_api_key="vapi-key").where(Account.id == account_a.id).execute()
    response = client.post("/api/calls/redirect", json={"call_uuid": call_uuid, "media_server": "vapi"},
                           headers=headers(key_a))
    assert response.status_code == 200, response.json
    assert place(client, key_a, socket_url="vapi").status_code == 200
    assert place(client, key_a, socket_url="vapi", caller_id_number="+12125550199").json == {
        "error": NO_VAPI_ASSISTANT}  # another caller ID, whose number (none) has no id
    Account.update(elevenlabs_agent_id="agent_abc").where(Account.id == account_a.id).execute()
    assert place(client, key_a).status_code == 200
    client.post("/api/calls/hangup", json={"call_uuid": call_uuid}, headers=headers(key_a))
    gw.controller.wait_status(call_uuid, FINAL, 5)


def test_one_accounts_provider_settings_do_not_serve_another(client, key_a, key_b, account_a, account_b):
    Account.update(elevenlabs_agent_id="agent_a", vapi_assistant_id="asst-a", vapi_api_key="vapi-a").where(
        Account.id == account_a.id).execute()
    PhoneNumber.create(account=account_a, e164="+919812345678", route="bot", socket_url="elevenlabs",
                       elevenlabs_agent_id="agent_a_number")  # B's default caller ID, but A's number
    assert place(client, key_a, socket_url="elevenlabs").status_code == 200
    response = client.post("/api/calls", json={"destination_number": "9812345679", "socket_url": "elevenlabs"},
                           headers=headers(key_b))
    assert (response.status_code, response.json) == (400, {"error": NO_ELEVENLABS_AGENT})


def test_redirect_of_an_answered_call_needs_the_media_bridge(client, gw, key_a):
    call_uuid = place(client, key_a).json["call_uuid"]
    gw.controller.wait_status(call_uuid, [Status.IN_PROGRESS], 5)
    body = {"call_uuid": call_uuid, "media_server": "wss://other.example/bot"}
    response = client.post("/api/calls/redirect", json=body, headers=headers(key_a))
    assert response.status_code == 409 and response.json == {"error": "media bridge not available"}
    assert Call.get_by_id(call_uuid).socket_url == DEFAULT_SOCKET

    seen = []
    gw.redirect_media = lambda call, target: seen.append((call.uuid, target))
    response = client.post("/api/calls/redirect", json=body, headers=headers(key_a))
    assert response.status_code == 200 and response.json["status"] == "in-progress"
    assert seen == [(call_uuid, "wss://other.example/bot")]
    assert Call.get_by_id(call_uuid).socket_url == "wss://other.example/bot"
    bad = client.post("/api/calls/redirect", json={"call_uuid": call_uuid, "media_server": "bot"},
                      headers=headers(key_a))
    assert bad.status_code == 400 and bad.json["error"].startswith("media_server: 'bot' is invalid")
    client.post("/api/calls/hangup", json={"call_uuid": call_uuid}, headers=headers(key_a))
    gw.controller.wait_status(call_uuid, FINAL, 5)


def test_unknown_calls_are_404(client, key_a):
    assert client.get(f"/api/calls/{uuid.uuid4()}", headers=headers(key_a)).json == {"error": "Call not found"}
    for not_a_uuid in ("not-a-uuid", "x" * 100):  # no route: a read's path takes a UUID
        response = client.get(f"/api/calls/{not_a_uuid}", headers=headers(key_a))
        assert (response.status_code, response.json) == (404, {"error": "Not found"})
    for call_uuid in (str(uuid.uuid4()), "not-a-uuid", "x" * 100):
        for action, extra in (("hangup", {}), ("transfer", {"destination_number": "1000"}),
                              ("redirect", {"media_server": "vapi"})):
            response = client.post(f"/api/calls/{action}", json={"call_uuid": call_uuid[:64], **extra},
                                   headers=headers(key_a))
            assert response.status_code == 404 and response.json == {"error": "Call not found"}, action


def test_another_accounts_call_is_404_like_an_unknown_one(client, gw, key_a, key_b):
    call_uuid = place(client, key_a).json["call_uuid"]
    gw.controller.wait_status(call_uuid, [Status.IN_PROGRESS], 5)
    assert client.get(f"/api/calls/{call_uuid}", headers=headers(key_b)).status_code == 404
    for action, extra in (("hangup", {}), ("transfer", {"destination_number": "1000"}),
                          ("redirect", {"media_server": "vapi"})):
        response = client.post(f"/api/calls/{action}", json={"call_uuid": call_uuid, **extra}, headers=headers(key_b))
        assert (response.status_code, response.json) == (404, {"error": "Call not found"}), action
    assert Call.get_by_id(call_uuid).status == "in_progress"
    assert Call.get_by_id(call_uuid).socket_url == DEFAULT_SOCKET
    assert client.get(f"/api/calls/{call_uuid}", headers=headers(key_a)).json["status"] == "in-progress"
    client.post("/api/calls/hangup", json={"call_uuid": call_uuid}, headers=headers(key_a))
    gw.controller.wait_status(call_uuid, FINAL, 5)


def test_scopes_and_agent_keys(client, account_a):
    read_only = create_key(account_a, scopes=["calls:read"])[1]
    response = place(client, read_only)
    assert response.status_code == 403
    assert response.json == {"error": "This API key does not have the calls:write scope"}
    agent_key = create_key(account_a, owner_agent=make_agent(account_a))[1]
    response = client.get(f"/api/calls/{uuid.uuid4()}", headers=headers(agent_key))
    assert response.status_code == 403
    assert response.json == {"error": "This API key belongs to one agent; call control needs an account-wide key"}


def test_no_freeswitch_node_is_503(client, gw, sim, key_a):
    sim.stop()
    node = next(iter(gw.controller.nodes.values()))
    with gevent.Timeout(5):
        while node.connected.is_set():
            gevent.sleep(0.01)
    response = place(client, key_a)
    assert response.status_code == 503
    assert response.json == {"error": "no FreeSWITCH node is connected"}
    assert Call.select().count() == 0

"""``POST /calls`` end to end on the simulator (audio blast, press-1, OTP), its validation
texts, and ``GET /calls/:unique_id``; on SQLite and PostgreSQL."""
from __future__ import annotations

from decimal import Decimal

import pytest

from test_public_support import *  # noqa: F401,F403 -- fixtures
from test_public_support import BASE, CALLER, auth, wait_final, wait_script
from gateway.api.public.schemas import number_required
from gateway.auth.keys import create_key
from gateway.models import Account, AudioClip, Call, CallEvent, PhoneNumber, PublicRun, Recording
from gateway.simulator.outcomes import Outcome
from gateway.numbering import country_name
from otp_support import heard_codes


def place(client, pair, **body):
    return client.post(f"{BASE}/calls", json=body, headers=auth(pair))


def test_audio_blast_plays_the_clip_then_hangs_up(client, gw, sim, pair, india, clip):
    response = place(client, pair, type="audio_blast", number="9812345678", audio_id=clip.id,
                     reference_id="order-99213")
    assert response.status_code == 200, response.json
    run = PublicRun.get()
    assert response.json == {"status": "success", "code": 200, "unique_id": f"run_{run.id}",
                             "reference_id": "order-99213", "details": "Call queued."}
    call = Call.get_by_id(run.call_uuid)
    assert (call.to_number, call.from_number, call.surface, call.campaign_id, call.reference_id) == (
        "+919812345678", CALLER, "public", run.id, "order-99213")

    script = wait_script(gw, call.uuid)
    call = wait_final(gw, call.uuid)
    channel = sim.history[call.uuid]
    assert channel.played == [clip.path]  # the clip, and nothing else
    assert channel.recordings == [Recording.get_by_id(call.uuid).path]
    assert script.steps == ["record_session", "playback"]
    assert channel.hangup_cause == "NORMAL_CLEARING" and not sim.history[call.uuid].events.count("DTMF")
    assert (call.status, call.end_reason) == ("completed", "completed")
    # Our hangup came after the playback finished (the far end never hangs up by itself).
    events = channel.events
    assert events.index("PLAYBACK_STOP") < events.index("CHANNEL_HANGUP")

    status = client.get(f"{BASE}/calls/run_{run.id}", headers=auth(pair)).json
    assert status == {"status": "success", "code": 200, "unique_id": f"run_{run.id}",
                      "reference_id": "order-99213", "details": "completed", "call_status": "completed",
                      "duration_sec": call.billsec}


def test_press1_caller_presses_1_and_is_transferred_to_the_agent(client, gw, sim, pair, india, clip):
    sim.default_play_seconds = 0.2
    response = place(client, pair, type="press1", number="+919812345678", audio_id=clip.id,
                     reference_id="promo-march")
    assert response.status_code == 200, response.json
    run = PublicRun.get()
    assert run.dtmf_map == {"1": "connect_agent"}
    sim.wait_event(run.call_uuid, "PLAYBACK_START", timeout=5)
    sim.press(run.call_uuid, "1")
    script = wait_script(gw, run.call_uuid)
    assert script.steps == ["record_session", "play_and_get_digits", "transfer"]
    channel = sim.history[run.call_uuid]
    assert channel.played[0] == clip.path
    assert channel.dtmf == ["1"]
    # uuid_transfer into the transfer context, to the account's agent destination.
    gw.controller.flush()
    commands = [e.detail for e in CallEvent.select().where(CallEvent.call == run.call_uuid, CallEvent.kind == "command")]
    assert {"command": "transfer", "destination": "1000"} in commands
    sim.wait_for(lambda: channel.profile.destination_number == "1000", timeout=5)
    run = PublicRun.get_by_id(run.id)
    assert (run.pressed, run.action) == ("1", "connect_agent")
    assert Call.get_by_id(run.call_uuid).status == "in_progress"  # talking to the agent now


def test_press1_other_key_or_no_key_hangs_up(client, gw, sim, pair, india, clip):
    response = place(client, pair, type="press1", number="9812345679", audio_id=clip.id,
                     dtmf_map={"1": "connect_agent", "9": "hangup"})
    run = PublicRun.get_by_id(int(response.json["unique_id"][4:]))
    sim.wait_event(run.call_uuid, "PLAYBACK_START", timeout=5)
    sim.press(run.call_uuid, "9")
    script = wait_script(gw, run.call_uuid)
    assert script.steps == ["record_session", "play_and_get_digits"]
    assert wait_final(gw, run.call_uuid).status == "completed"
    assert (PublicRun.get_by_id(run.id).pressed, PublicRun.get_by_id(run.id).action) == ("9", "hangup")


def test_otp_call_speaks_the_code_twice_and_it_verifies(client, gw, sim, pair, india):
    sim.keep_played_audio, sim.play_speed = True, 20.0
    response = place(client, pair, type="otp", number="9812345678", code="4821", reference_id="signup-7781")
    assert response.status_code == 200, response.json
    body = response.json
    request_id = body["request_id"]
    assert body == {"status": "success", "code": 200, "unique_id": request_id, "reference_id": "signup-7781",
                    "details": "Verification call queued.", "request_id": request_id, "expires_in_sec": 600}
    call = Call.get(Call.surface == "public")
    script = wait_script(gw, call.uuid)
    wait_final(gw, call.uuid)
    channel = sim.history[call.uuid]
    # The words are spoken; the code is played from audio of its digits (gateway.otp.readout).
    assert channel.spoken == ["Your verification code is", ". Again,"]
    assert heard_codes(channel) == ["4821", "4821"]
    assert script.steps == ["speak", "playback", "speak", "playback"] and channel.recordings == []
    # The code is in no row and no log entry.
    for event in CallEvent.select().where(CallEvent.call == call.uuid):
        assert "4821" not in str(event.detail) and "4 8 2 1" not in str(event.detail)

    verify = client.post(f"{BASE}/otp/verify", json={"request_id": request_id, "code": "4821"}, headers=auth(pair))
    assert (verify.status_code, verify.json) == (200, {
        "status": "success", "code": 200, "unique_id": request_id, "reference_id": "signup-7781",
        "details": "Code verified.", "request_id": request_id, "verified": True})


NUMBER = "A valid Indian mobile number is required."


def test_indian_numbers_in_all_three_forms(client, gw, pair, india, clip):
    for form in ("9812345678", "919812345678", "+919812345678", "+91 98123 45678", "098123-45678"):
        response = place(client, pair, type="audio_blast", number=form, audio_id=clip.id)
        assert response.status_code == 200, (form, response.json)
        run = PublicRun.get_by_id(int(response.json["unique_id"][4:]))
        assert Call.get_by_id(run.call_uuid).to_number == "+919812345678", form
    # A number sent as a JSON number is read as its digits.
    assert place(client, pair, type="audio_blast", number=9812345678, audio_id=clip.id).status_code == 200


BAD_REQUESTS = [  # ``...`` leaves the field out
    ({"type": ...}, "A valid type is required: audio_blast, press1 or otp."),
    ({"type": "fax"}, "A valid type is required: audio_blast, press1 or otp."),
    ({"type": None}, "A valid type is required: audio_blast, press1 or otp."),
    ({"number": ...}, NUMBER),
    ({"number": None}, NUMBER),
    ({"number": ""}, NUMBER),
    ({"number": "12345"}, NUMBER),
    ({"number": "98123456789"}, NUMBER),
    ({"number": "+14155550123"}, NUMBER),  # valid, but not Indian: not an Indian mobile number
    ({"number": "+912240001234"}, NUMBER),  # Indian landline: not mobile
    ({"number": "98123ABCDE"}, NUMBER),
    ({"number": {"n": 1}}, NUMBER),
    ({"number": True}, NUMBER),
    ({"audio_id": ...}, "audio_id is required for audio_blast and press1 calls."),
    ({"audio_id": None}, "audio_id is required for audio_blast and press1 calls."),
    ({"audio_id": "twelve"}, "audio_id must be the numeric id of an audio clip in your library."),
    ({"audio_id": 0}, "audio_id must be the numeric id of an audio clip in your library."),
    ({"audio_id": 1.5}, "audio_id must be the numeric id of an audio clip in your library."),
    ({"audio_id": "1.5"}, "audio_id must be the numeric id of an audio clip in your library."),
    ({"audio_id": 1e300}, "audio_id must be the numeric id of an audio clip in your library."),
    ({"audio_id": True}, "audio_id must be the numeric id of an audio clip in your library."),
    ({"audio_id": "\u0661"}, "audio_id must be the numeric id of an audio clip in your library."),
    ({"audio_id": 999999}, "audio_id does not match an audio clip in your library."),
    ({"type": "press1", "dtmf_map": {"1": "dance"}},
     "dtmf_map must map keypad keys (0-9, * or #) to an action: connect_agent or hangup."),
    ({"type": "press1", "dtmf_map": {"12": "hangup"}},
     "dtmf_map must map keypad keys (0-9, * or #) to an action: connect_agent or hangup."),
    ({"type": "press1", "dtmf_map": ["1"]},
     "dtmf_map must map keypad keys (0-9, * or #) to an action: connect_agent or hangup."),
    ({"caller_id": "+919999999999"}, "caller_id must be a verified caller number on your account."),
    ({"caller_id": "nope"}, "caller_id must be a verified caller number on your account."),
    ({"type": "otp", "code": "12"}, "code must be 4 to 8 digits."),
    ({"type": "otp", "code": "12ab"}, "code must be 4 to 8 digits."),
    ({"type": "otp", "code": "123456789"}, "code must be 4 to 8 digits."),
    ({"type": "otp", "length": 3}, "length must be a whole number from 4 to 8."),
    ({"type": "otp", "length": 9}, "length must be a whole number from 4 to 8."),
    ({"type": "otp", "length": "four"}, "length must be a whole number from 4 to 8."),
    ({"type": "otp", "length": 4.5}, "length must be a whole number from 4 to 8."),
    ({"type": "otp", "ttl": 60.5}, "ttl must be a whole number of seconds from 30 to 1800."),
    ({"type": "otp", "max_attempts": 2.5}, "max_attempts must be a whole number from 1 to 10."),
    ({"type": "otp", "ttl": 5}, "ttl must be a whole number of seconds from 30 to 1800."),
    ({"type": "otp", "max_attempts": 0}, "max_attempts must be a whole number from 1 to 10."),
    ({"type": "otp", "message": "no token here"},
     "message must be text of at most 500 characters containing the {code} token."),
    ({"reference_id": {"a": 1}}, "reference_id must be a string."),
]


def test_bad_requests_are_400_with_the_contract_texts(client, gw, pair, india, clip):
    for fields, details in BAD_REQUESTS:
        body = {"type": "audio_blast", "number": "9812345678", "audio_id": clip.id, **fields}
        response = place(client, pair, **{k: v for k, v in body.items() if v is not ...})
        assert (response.status_code, response.json["details"]) == (400, details), fields
        assert response.json["status"] == "error" and response.json["code"] == 400
    # Another account's clip is as unknown as a missing one.
    foreign = AudioClip.create(account=Account.create(name="x", region="IN"), name="x", path="/x.wav",
                               duration_ms=1, size_bytes=1)
    response = place(client, pair, type="audio_blast", number="9812345678", audio_id=foreign.id)
    assert response.json["details"] == "audio_id does not match an audio clip in your library."
    assert Call.select().count() == 0 and PublicRun.select().count() == 0


@pytest.mark.parametrize("region, country", [("BR", "Brazil"), ("US", "United States"), ("KR", "South Korea"),
                                             ("CI", "Côte d'Ivoire")])
def test_an_account_outside_india_is_told_its_own_country(client, gw, region, country):
    account = Account.create(name=f"acme-{region}", region=region, default_caller_id="+14155550100",
                             balance=Decimal("500"), rate_limit_per_minute=100_000)
    api_key, secret = create_key(account)
    wanted = f"A valid mobile number for {country} is required."
    # Whether the view (not a mobile number of the region) or the schema (missing, not
    # text) refuses it, the sentence names the account's country.
    for body in ({"number": "+919812345678"}, {"number": "12345"}, {}, {"number": {"n": 1}}):
        response = place(client, (api_key.publishable_id, secret), type="otp", **body)
        assert (response.status_code, response.json["details"]) == (400, wanted), body
    # The verify and campaign trigger surfaces read the number the same way.
    response = client.post(f"{BASE}/otp/send", json={"number": "12345"},
                           headers=auth((api_key.publishable_id, secret)))
    assert (response.status_code, response.json["details"]) == (400, wanted)
    assert Call.select().count() == 0


def test_country_names():
    assert [country_name(region) for region in ("IN", "br", "GB", "XK")] == [
        "India", "Brazil", "United Kingdom", "region XK"]
    assert number_required("IN") == NUMBER and number_required("in") == NUMBER


def test_whole_numbers_written_as_decimals_or_text_are_taken(client, gw, pair, india, clip):
    for audio_id in (float(clip.id), str(clip.id)):
        response = place(client, pair, type="audio_blast", number="9812345678", audio_id=audio_id)
        assert (response.status_code, response.json["details"]) == (200, "Call queued."), audio_id
    response = place(client, pair, type="otp", number="9812345678", length=6.0, ttl="120")
    assert (response.status_code, response.json["expires_in_sec"]) == (200, 120)


def test_caller_id_agent_destination_balance_and_no_node(client, gw, sim, pair, india, clip):
    PhoneNumber.create(account=india, e164="+912240009999", route="bot", socket_url="wss://b.example/x")
    ok = place(client, pair, type="audio_blast", number="9812345678", audio_id=clip.id, caller_id="02240009999")
    run = PublicRun.get_by_id(int(ok.json["unique_id"][4:]))
    assert Call.get_by_id(run.call_uuid).from_number == "+912240009999"

    Account.update(agent_destination=None).where(Account.id == india.id).execute()
    response = place(client, pair, type="press1", number="9812345678", audio_id=clip.id)
    assert (response.status_code, response.json["details"]) == (
        400, "No agent destination is configured for this account. Please contact support.")
    # A press-1 map without connect_agent needs no destination.
    assert place(client, pair, type="press1", number="9812345678", audio_id=clip.id,
                 dtmf_map={"9": "hangup"}).status_code == 200

    Account.update(default_caller_id=None).where(Account.id == india.id).execute()
    response = place(client, pair, type="audio_blast", number="9812345678", audio_id=clip.id)
    assert (response.status_code, response.json["details"]) == (
        400, "No caller ID is configured for this account. Please contact support.")
    Account.update(default_caller_id=CALLER, balance=Decimal("0")).where(Account.id == india.id).execute()
    for body in ({"type": "audio_blast", "audio_id": clip.id}, {"type": "otp"}):
        response = place(client, pair, number="9812345678", **body)
        assert (response.status_code, response.json["details"]) == (
            403, "Insufficient wallet balance to place this call. Please recharge your wallet and retry.")

    Account.update(balance=Decimal("5")).where(Account.id == india.id).execute()
    calls_before = Call.select().count()
    sim.stop()
    import gevent

    with gevent.Timeout(5):
        while any(node.connected.is_set() for node in gw.controller.nodes.values()):
            gevent.sleep(0.02)
    for body in ({"type": "audio_blast", "audio_id": clip.id}, {"type": "otp"}):
        response = place(client, pair, number="9812345678", **body)
        assert response.status_code == 503
        assert response.json["details"] == "Could not place the call right now. Please retry."
    assert Call.select().count() == calls_before


def test_call_status_shapes_and_vocabulary(client, gw, sim, pair, other_pair, india, clip):
    sim.set_outcome("+919812345486", Outcome(final=486, provisional=None))
    busy = place(client, pair, type="audio_blast", number="9812345486", audio_id=clip.id).json["unique_id"]
    run = PublicRun.get_by_id(int(busy[4:]))
    wait_final(gw, run.call_uuid)
    status = client.get(f"{BASE}/calls/{busy}", headers=auth(pair)).json
    assert (status["details"], status["call_status"], status["duration_sec"], status["reference_id"]) == (
        "failed", "failed", 0, None)
    # By call id too; the unique_id answered is the run's.
    by_id = client.get(f"{BASE}/calls/{run.call_uuid}", headers=auth(pair)).json
    assert by_id["unique_id"] == busy and by_id["call_status"] == "failed"

    live = place(client, pair, type="audio_blast", number="9812345670", audio_id=clip.id).json["unique_id"]
    live_run = PublicRun.get_by_id(int(live[4:]))
    gw.controller.wait_status(live_run.call_uuid, ["in_progress"], 5)
    assert client.get(f"{BASE}/calls/{live}", headers=auth(pair)).json["call_status"] in ("answered", "completed")

    for unknown in ("run_999999", "run_abc", "nope", "5f3c8b2a-1d4e-4a9c-9e7b-2c6f0a1b3d8e", "run_" + "9" * 30):
        response = client.get(f"{BASE}/calls/{unknown}", headers=auth(pair))
        assert (response.status_code, response.json["details"]) == (404, "Call not found."), unknown
    # Another account's call, by run id or call id, is not found.
    for theirs in (busy, run.call_uuid):
        response = client.get(f"{BASE}/calls/{theirs}", headers=auth(other_pair))
        assert (response.status_code, response.json["details"]) == (404, "Call not found.")


def test_call_status_vocabulary_for_every_status(client, pair, india):
    """The status table of ``GET /calls/:unique_id``: queued, ringing, answered, completed, failed."""
    import uuid as uuidlib

    expected = {"queued": "queued", "ringing": "ringing", "in_progress": "answered", "completed": "completed",
                "missed": "failed", "failed": "failed"}
    for status, shown in expected.items():
        call = Call.create(uuid=str(uuidlib.uuid4()), account=india, direction="outbound", from_number=CALLER,
                           to_number="+919812345678", node="fs1", status=status, billsec=7 if status == "completed" else 0)
        body = client.get(f"{BASE}/calls/{call.uuid}", headers=auth(pair)).json
        assert (body["details"], body["call_status"], body["unique_id"]) == (shown, shown, call.uuid), status
        assert body["duration_sec"] == (7 if status == "completed" else 0)


def test_call_webhooks_carry_the_run_id_and_reference_id(client, gw, sim, pair, india, clip):
    """The ``call.*`` events of a public call (built by gateway.webhooks) name its run."""
    import json

    from gateway.models import WebhookDelivery
    from gateway.webhooks.subscriptions import set_subscription

    set_subscription(india, "public", url="https://hooks.example.com/voice", resolve_host=False)
    response = place(client, pair, type="audio_blast", number="9812345678", audio_id=clip.id, reference_id="o-1")
    run = PublicRun.get_by_id(int(response.json["unique_id"][4:]))
    wait_final(gw, run.call_uuid)
    deliveries = list(WebhookDelivery.select().where(WebhookDelivery.call_uuid == run.call_uuid)
                      .order_by(WebhookDelivery.id))
    assert [d.event_type for d in deliveries] == ["call.ringing", "call.in_progress", "call.completed"]
    final = json.loads(deliveries[-1].body)
    assert final["id"].startswith("evt_")
    assert {k: final["data"][k] for k in ("unique_id", "campaign_id", "reference_id", "status", "end_reason")} == {
        "unique_id": f"run_{run.id}", "campaign_id": run.id, "reference_id": "o-1", "status": "completed",
        "end_reason": "completed"}
    assert final["data"]["created_at"].endswith("+05:30")

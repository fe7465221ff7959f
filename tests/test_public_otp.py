"""``/otp/send`` and ``/otp/verify``: every rule and every row of the verify table, the
send throttle, the per-number guess cap, hashing, and the verification shape of
``GET /calls/:unique_id``; SQLite and PostgreSQL."""
from __future__ import annotations

from datetime import timedelta

import gevent

from test_public_support import *  # noqa: F401,F403 -- fixtures
from test_public_support import BASE, auth, wait_final, wait_script
from gateway.models import Call, OtpGuess, OtpRequest, utcnow
from gateway.otp import codes
from otp_support import heard_codes
from gateway.simulator.outcomes import Outcome

MISSING = "A code and either request_id or number are required."
CAPPED = "Too many incorrect codes for this number. Please wait before trying again."


def send(client, pair, **body):
    return client.post(f"{BASE}/otp/send", json=body, headers=auth(pair))


def verify(client, pair, **body):
    return client.post(f"{BASE}/otp/verify", json=body, headers=auth(pair))


def status(client, pair, unique_id):
    return client.get(f"{BASE}/calls/{unique_id}", headers=auth(pair)).json


def test_send_defaults_generated_code_and_hashing(client, gw, sim, pair, india, media_dir):
    sim.keep_played_audio, sim.play_speed = True, 20.0
    response = send(client, pair, number="9812345601", reference_id="signup-7781")
    assert response.status_code == 200, response.json
    body = response.json
    request_id = body["request_id"]
    assert body == {"status": "success", "code": 200, "unique_id": request_id, "reference_id": "signup-7781",
                    "details": "Verification call queued.", "request_id": request_id, "expires_in_sec": 600}
    otp = OtpRequest.get_by_id(request_id)
    assert (otp.code_length, otp.max_attempts, otp.attempts, otp.status) == (4, 3, 0, "pending")
    assert abs((otp.expires_at - otp.created_at).total_seconds() - 600) < 1
    call = Call.get_by_id(otp.call_uuid)
    assert (call.to_number, call.surface, call.campaign_id, call.reference_id) == (
        "+919812345601", "public", None, "signup-7781")
    script = wait_script(gw, call.uuid)
    channel = sim.history[call.uuid]
    # The words are spoken, the code is played (twice) from a file of digit prompts.
    assert channel.spoken == ["Your verification code is", ". Again,"]
    assert script.steps == ["speak", "playback", "speak", "playback"]
    heard = heard_codes(channel)
    assert len(heard) == 2 and heard[0] == heard[1] and len(heard[0]) == 4
    code = heard[0]
    assert channel.played[0] == channel.played[1] and channel.played[0].startswith(str(media_dir / "otp") + "/")
    assert list((media_dir / "otp").iterdir()) == []  # deleted once the script ended
    # Stored only as a salted HMAC: the code appears in no column.
    row = OtpRequest.select().where(OtpRequest.id == request_id).dicts().get()
    assert code not in {str(v) for k, v in row.items() if k not in ("code_length", "attempts", "max_attempts")}
    assert otp.code_hash == codes.hash_code(code, otp.salt) and len(otp.salt) == 32
    assert verify(client, pair, request_id=request_id, code=code).json["verified"] is True

    custom = send(client, pair, number="+919812345602", code="90817263", ttl=120, max_attempts=5,
                  message="Your Acme login code is {code}. Do not share it.")
    assert custom.json["expires_in_sec"] == 120
    otp = OtpRequest.get_by_id(custom.json["request_id"])
    assert (otp.code_length, otp.max_attempts) == (8, 5)
    wait_script(gw, otp.call_uuid)
    assert sim.history[otp.call_uuid].spoken == ["Your Acme login code is", ". Do not share it."]
    assert heard_codes(sim.history[otp.call_uuid]) == ["90817263"]
    generated = send(client, pair, number="919812345603", length=6)
    assert OtpRequest.get_by_id(generated.json["request_id"]).code_length == 6
    # Two requests with the same code do not share a hash.
    a = send(client, pair, number="9812345604", code="1111").json["request_id"]
    b = send(client, pair, number="9812345605", code="1111").json["request_id"]
    assert OtpRequest.get_by_id(a).code_hash != OtpRequest.get_by_id(b).code_hash


def test_every_row_of_the_verify_table(client, gw, pair, other_pair, india):
    def fresh(number, **extra):
        return send(client, pair, number=number, code="4321", **extra).json["request_id"]

    def check(response, code, details, **extra):
        expected = {"status": "success" if code == 200 else "error", "code": code, "details": details,
                    "verified": code == 200, **extra}
        got = {k: response.json[k] for k in expected}
        assert (response.status_code, got) == (code, expected)
        return response.json

    # Code is correct.
    rid = fresh("9812345611")
    check(verify(client, pair, request_id=rid, code="4321"), 200, "Code verified.", request_id=rid, unique_id=rid)
    # Code already used.
    check(verify(client, pair, request_id=rid, code="4321"), 400, "This code has already been used.")
    # Code is incorrect: attempts_left counts down; the cap turns it into "too many".
    rid = fresh("9812345612")
    check(verify(client, pair, request_id=rid, code="0000"), 401, "Incorrect code.", attempts_left=2, unique_id=rid)
    check(verify(client, pair, request_id=rid, code="99"), 401, "Incorrect code.", attempts_left=1)
    check(verify(client, pair, request_id=rid, code="1111"), 401, "Incorrect code.", attempts_left=0)
    check(verify(client, pair, request_id=rid, code="4321"), 400, "Too many incorrect attempts.")
    assert OtpRequest.get_by_id(rid).attempts == 3
    # Right code on the last attempt still verifies.
    rid = fresh("9812345613", max_attempts=2)
    check(verify(client, pair, request_id=rid, code="1234"), 401, "Incorrect code.", attempts_left=1)
    check(verify(client, pair, request_id=rid, code=4321), 200, "Code verified.")  # a JSON number is fine
    # Code has expired.
    rid = fresh("9812345614")
    OtpRequest.update(expires_at=utcnow() - timedelta(seconds=1)).where(OtpRequest.id == rid).execute()
    check(verify(client, pair, request_id=rid, code="4321"), 400, "This code has expired.")
    assert OtpRequest.get_by_id(rid).attempts == 0
    # Request not found: unknown id, malformed id, another account's request, a number with none.
    for unknown in ("5f3c8b2a-1d4e-4a9c-9e7b-2c6f0a1b3d8e", "not-a-uuid"):
        check(verify(client, pair, request_id=unknown, code="4321"), 400, "Verification failed.", unique_id=None)
    check(verify(client, other_pair, request_id=fresh("9812345615"), code="4321"), 400, "Verification failed.")
    check(verify(client, pair, number="9899999999", code="4321"), 400, "Verification failed.")
    # Missing code or identifier.
    for body in ({"request_id": rid}, {"number": "9812345611"}, {"code": "4321"}, {},
                 {"request_id": rid, "code": ""}, {"request_id": rid, "code": None}, {"code": {"x": 1}, "number": "1"}):
        check(verify(client, pair, **body), 400, MISSING)


def test_verify_by_number_uses_the_most_recent_pending_request(client, gw, pair, india):
    first = send(client, pair, number="9812345621", code="1111").json["request_id"]
    second = send(client, pair, number="9812345621", code="2222").json["request_id"]
    # The older code is wrong for the most recent pending request.
    wrong = verify(client, pair, number="919812345621", code="1111")
    assert (wrong.status_code, wrong.json["unique_id"], wrong.json["attempts_left"]) == (401, second, 2)
    ok = verify(client, pair, number="+91 98123 45621", code="2222", reference_id="mine")
    assert (ok.status_code, ok.json["request_id"], ok.json["reference_id"]) == (200, second, "mine")
    # Now the first is the most recent pending one.
    assert verify(client, pair, number="9812345621", code="1111").json["request_id"] == first
    # None pending: the most recent request answers, so the reason is told.
    assert verify(client, pair, number="9812345621", code="1111").json["details"] == "This code has already been used."
    bad = verify(client, pair, number="12345", code="1111")
    assert (bad.status_code, bad.json["details"]) == (400, "A valid Indian mobile number is required.")


def test_concurrent_verifies_never_exceed_the_cap(client, gw, pair, india):
    rid = send(client, pair, number="9812345631", code="5555").json["request_id"]
    results = [gevent.spawn(lambda: verify(client, pair, request_id=rid, code="0000").status_code) for _ in range(8)]
    gevent.joinall(results, timeout=20)
    codes_seen = sorted(g.value for g in results)
    assert codes_seen.count(401) == 3 and codes_seen.count(400) == 5
    assert OtpRequest.get_by_id(rid).attempts == 3


def test_send_throttle_per_number(client, gw, pair, other_pair, india, other):
    for _ in range(3):
        assert send(client, pair, number="9812345641").status_code == 200
    throttled = send(client, pair, number="+919812345641", reference_id="t-1")
    assert throttled.status_code == 429
    assert throttled.json == {"status": "error", "code": 429, "unique_id": None, "reference_id": "t-1",
                              "details": "Too many verification calls to this number. Please wait a few minutes"
                                         " before sending another code."}
    assert "RateLimit-Limit" in throttled.headers
    # /calls with type otp is the same endpoint underneath.
    assert client.post(f"{BASE}/calls", json={"type": "otp", "number": "9812345641"},
                       headers=auth(pair)).status_code == 429
    assert send(client, pair, number="9812345642").status_code == 200  # another number
    assert send(client, other_pair, number="9812345641").status_code == 200  # another account
    assert OtpRequest.select().where(OtpRequest.to_number == "+919812345641").count() == 4
    # Out of the window, sending works again.
    OtpRequest.update(created_at=utcnow() - timedelta(minutes=11)).execute()
    assert send(client, pair, number="9812345641").status_code == 200


def test_verification_status_shape(client, gw, sim, pair, india):
    rid = send(client, pair, number="9812345651", code="7777", reference_id="signup-1").json["request_id"]
    assert status(client, pair, rid) == {
        "status": "success", "code": 200, "unique_id": rid, "reference_id": "signup-1", "details": "pending",
        "call_status": "pending", "verified": False, "attempts": 0, "max_attempts": 3}
    verify(client, pair, request_id=rid, code="0000")
    verify(client, pair, request_id=rid, code="7777")
    body = status(client, pair, rid)
    assert (body["call_status"], body["details"], body["verified"], body["attempts"]) == ("verified", "verified",
                                                                                          True, 2)
    expired = send(client, pair, number="9812345652").json["request_id"]
    OtpRequest.update(expires_at=utcnow() - timedelta(seconds=1)).where(OtpRequest.id == expired).execute()
    assert status(client, pair, expired)["call_status"] == "expired"
    capped = send(client, pair, number="9812345653", max_attempts=1).json["request_id"]
    verify(client, pair, request_id=capped, code="0000")
    assert status(client, pair, capped)["call_status"] == "failed"
    # The call could not be delivered: the request fails, and cannot be verified.
    sim.set_outcome("+919812345486", Outcome(final=486, provisional=None))
    busy = send(client, pair, number="9812345486", code="8888").json["request_id"]
    wait_final(gw, OtpRequest.get_by_id(busy).call_uuid)
    assert status(client, pair, busy)["call_status"] == "failed"
    assert verify(client, pair, request_id=busy, code="8888").json["details"] == "Verification failed."


def test_guess_cap_per_number_across_codes(client, gw, pair, other_pair, india, other):
    """20 wrong codes for a number in 24 hours, over any number of requests, and no code is
    checked for it any more (the right one neither) until the oldest is 24 hours old."""
    first = send(client, pair, number="9812345661", code="1111", max_attempts=10).json["request_id"]
    second = send(client, pair, number="9812345661", code="2222", max_attempts=10).json["request_id"]
    for guess in range(10):
        assert verify(client, pair, request_id=first, code=f"{guess:04d}").status_code == 401
    for guess in range(10):
        assert verify(client, pair, number="9812345661", code=f"{guess:04d}").status_code == 401
    assert OtpGuess.select().count() == 20
    third = send(client, pair, number="9812345661", code="3333").json["request_id"]
    capped = verify(client, pair, request_id=third, code="3333", reference_id="v-1")
    assert capped.status_code == 429
    assert capped.json == {"status": "error", "code": 429, "unique_id": third, "reference_id": "v-1",
                           "details": CAPPED, "verified": False}
    assert 86_000 < int(capped.headers["Retry-After"]) <= 86_401
    assert verify(client, pair, number="+91 98123 45661", code="3333").status_code == 429
    assert OtpRequest.get_by_id(third).attempts == 0  # refused before the code was looked at
    # Another number, and the same number in another account, are not capped.
    assert verify(client, pair, request_id=send(client, pair, number="9812345662", code="4444").json["request_id"],
                  code="4444").status_code == 200
    theirs = send(client, other_pair, number="9812345661", code="5555").json["request_id"]
    assert verify(client, other_pair, request_id=theirs, code="5555").status_code == 200
    # Right codes are not guesses; once the window has passed the oldest, codes are checked again.
    assert OtpGuess.select().count() == 20
    OtpGuess.update(at=utcnow() - timedelta(hours=24, seconds=1)).execute()
    assert verify(client, pair, request_id=third, code="3333").json["verified"] is True
    # The window's old notes are forgotten as new ones come.
    rid = send(client, other_pair, number="9812345663", code="6666").json["request_id"]
    verify(client, other_pair, request_id=rid, code="0000")
    assert OtpGuess.select().where(OtpGuess.to_number == "+919812345661").count() == 20
    OtpRequest.update(created_at=utcnow() - timedelta(minutes=11)).execute()  # past the send throttle
    verify(client, pair, request_id=send(client, pair, number="9812345661", code="7777").json["request_id"],
           code="0000")
    assert OtpGuess.select().where(OtpGuess.to_number == "+919812345661").count() == 1


def test_concurrent_wrong_codes_never_pass_the_guess_cap(client, gw, pair, india):
    rid = send(client, pair, number="9812345671", code="5555", max_attempts=10).json["request_id"]
    account = OtpRequest.get_by_id(rid).account_id
    for _ in range(19):
        OtpGuess.create(account=account, to_number="+919812345671", at=utcnow())
    results = [gevent.spawn(lambda: verify(client, pair, request_id=rid, code="0000").status_code) for _ in range(6)]
    gevent.joinall(results, timeout=20)
    assert sorted(g.value for g in results) == [401, 429, 429, 429, 429, 429]
    assert OtpGuess.select().count() == 20 and OtpRequest.get_by_id(rid).attempts == 1


def test_a_code_lives_at_most_thirty_minutes(client, gw, pair, india):
    too_long = send(client, pair, number="9812345681", ttl=1801)
    assert (too_long.status_code, too_long.json["details"]) == (
        400, "ttl must be a whole number of seconds from 30 to 1800.")
    assert send(client, pair, number="9812345681", ttl=1800).json["expires_in_sec"] == 1800

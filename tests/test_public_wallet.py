"""The wallet (rates, a ledger entry for every billed call, written with the final status;
``GET /account``; calls refused when the balance cannot cover them) and recordings
(stored through FreeSWITCH, served with Range); SQLite and PostgreSQL."""
from __future__ import annotations

from datetime import datetime, timezone
from decimal import Decimal

from test_public_support import *  # noqa: F401,F403 -- fixtures
from test_public_support import BASE, auth, tone_wav, wait_final
from gateway.billing import ledger
from gateway.billing.rates import Rate, best_rate, check_prefix
from gateway.calls import store
from gateway.calls.states import EndReason, Status, Transition
from gateway.campaigns.audio import store_clip
from gateway.models import Account, CallRate, LedgerEntry, OtpRequest, PublicRun, Recording
from gateway.simulator.outcomes import Outcome

INSUFFICIENT = "Insufficient wallet balance to place this call. Please recharge your wallet and retry."


def test_rates_and_costs():
    rate = Rate("+91", Decimal("1.20"), 60)
    assert [rate.cost(s) for s in (0, 1, 60, 61, 125)] == [Decimal("0"), Decimal("1.2000"), Decimal("1.2000"),
                                                          Decimal("2.4000"), Decimal("3.6000")]
    per_second = Rate("", Decimal("0.90"), 1)
    assert per_second.cost(61) == Decimal("0.9150") and per_second.first_pulse == Decimal("0.0150")
    rates = [Rate("", Decimal("2")), Rate("+91", Decimal("1")), Rate("+9198", Decimal("0.5"))]
    assert best_rate(rates, "+919812345678").prefix == "+9198"
    assert best_rate(rates, "+912240001234").prefix == "+91"
    assert best_rate(rates, "+14155550123").prefix == ""
    assert best_rate(rates[1:], "+14155550123") is None
    assert check_prefix("91") == "+91" and check_prefix("") == "" and check_prefix("*") == ""


def test_answered_call_is_charged_with_its_final_status(client, gw, sim, pair, india):
    CallRate.create(account=india, prefix="+91", per_minute=Decimal("1.20"), pulse_sec=60)
    CallRate.create(account=india, prefix="+9198123", per_minute=Decimal("0.60"), pulse_sec=60)
    Account.update(balance=Decimal("10")).where(Account.id == india.id).execute()
    long_clip = store_clip(india, tone_wav(1.2), name="long")
    response = client.post(f"{BASE}/calls", json={"type": "audio_blast", "number": "9812345678",
                                                  "audio_id": long_clip.id}, headers=auth(pair))
    run = PublicRun.get_by_id(int(response.json["unique_id"][4:]))
    call = wait_final(gw, run.call_uuid)
    assert call.status == "completed" and call.billsec >= 1
    entry = LedgerEntry.get(LedgerEntry.call_uuid == call.uuid)
    assert (entry.kind, entry.amount, entry.per_minute, entry.pulse_sec, entry.billsec) == (
        "call", Decimal("-0.6000"), Decimal("0.6000"), 60, call.billsec)
    assert entry.balance_after == Decimal("9.4000")
    account = client.get(f"{BASE}/account", headers=auth(pair))
    assert account.json == {"status": "success", "code": 200, "unique_id": None, "reference_id": None,
                            "details": "OK", "data": {"balance_inr": 9.4, "currency": "INR"}}
    # An unanswered call costs nothing and writes no entry.
    sim.set_outcome("+919812345486", Outcome(final=486, provisional=None))
    busy = client.post(f"{BASE}/calls", json={"type": "audio_blast", "number": "9812345486",
                                              "audio_id": long_clip.id}, headers=auth(pair))
    busy_run = PublicRun.get_by_id(int(busy.json["unique_id"][4:]))
    assert wait_final(gw, busy_run.call_uuid).status == "failed"
    assert LedgerEntry.select().count() == 1
    # Charged once, even if the final status were applied again (another process, a replay).
    store.apply([(call.uuid, "in_progress", 99, Transition(Status.COMPLETED, datetime.now(timezone.utc), "test",
                                                           end_reason=EndReason.COMPLETED, billsec=30))],
                hooks=[ledger.billing_hook])
    assert LedgerEntry.select().count() == 1
    assert Account.get_by_id(india.id).balance == Decimal("9.4000")


def test_balance_must_cover_a_pulse(client, gw, pair, india, clip):
    CallRate.create(account=india, prefix="", per_minute=Decimal("1.20"), pulse_sec=60)
    Account.update(balance=Decimal("1.19")).where(Account.id == india.id).execute()
    for body in ({"type": "audio_blast", "audio_id": clip.id}, {"type": "press1", "audio_id": clip.id},
                 {"type": "otp"}):
        response = client.post(f"{BASE}/calls", json={"number": "9812345678", **body}, headers=auth(pair))
        assert (response.status_code, response.json["details"]) == (403, INSUFFICIENT), body
    response = client.post(f"{BASE}/otp/send", json={"number": "9812345678"}, headers=auth(pair))
    assert (response.status_code, response.json["details"]) == (403, INSUFFICIENT)
    entry = ledger.credit(india, Decimal("0.01"), description="top-up")
    assert (entry.kind, entry.amount, entry.balance_after) == ("credit", Decimal("0.0100"), Decimal("1.2000"))
    response = client.post(f"{BASE}/calls", json={"type": "audio_blast", "number": "9812345678",
                                                  "audio_id": clip.id}, headers=auth(pair))
    assert response.status_code == 200
    # No rate, but an empty (or negative) wallet: refused too.
    CallRate.delete().execute()
    Account.update(balance=Decimal("0")).where(Account.id == india.id).execute()
    response = client.post(f"{BASE}/calls", json={"type": "audio_blast", "number": "9812345678",
                                                  "audio_id": clip.id}, headers=auth(pair))
    assert response.status_code == 403


def test_recording_is_stored_and_served_with_range(client, gw, sim, pair, other_pair, india, clip):
    response = client.post(f"{BASE}/calls", json={"type": "audio_blast", "number": "9812345678",
                                                  "audio_id": clip.id}, headers=auth(pair))
    unique_id = response.json["unique_id"]
    run = PublicRun.get_by_id(int(unique_id[4:]))
    sim.wait_event(run.call_uuid, "PLAYBACK_START", timeout=5)
    # While the call lives, no recording is served yet.
    live = client.get(f"{BASE}/calls/{unique_id}/recording", headers=auth(pair))
    assert (live.status_code, live.json["details"]) == (404, "No recording is available for this call.")
    call = wait_final(gw, run.call_uuid)
    recording = Recording.get_by_id(call.uuid)
    assert sim.history[call.uuid].recordings == [recording.path]
    with open(recording.path, "rb") as f:
        audio = f.read()
    assert audio[:4] == b"RIFF" and len(audio) > 44
    whole = client.get(f"{BASE}/calls/{unique_id}/recording", headers=auth(pair))
    assert (whole.status_code, whole.headers["Content-Type"], whole.data) == (200, "audio/wav", audio)
    assert whole.headers["Accept-Ranges"] == "bytes" and whole.headers["RateLimit-Limit"]
    part = client.get(f"{BASE}/calls/{unique_id}/recording", headers={**auth(pair), "Range": "bytes=0-99"})
    assert (part.status_code, part.data, part.headers["Content-Range"]) == (206, audio[:100],
                                                                            f"bytes 0-99/{len(audio)}")
    tail = client.get(f"{BASE}/calls/{call.uuid}/recording", headers={**auth(pair), "Range": "bytes=40-"})
    assert (tail.status_code, tail.data) == (206, audio[40:])
    unsatisfiable = client.get(f"{BASE}/calls/{unique_id}/recording",
                               headers={**auth(pair), "Range": f"bytes={len(audio) + 10}-"})
    assert unsatisfiable.status_code == 416 and unsatisfiable.json["status"] == "error"
    assert unsatisfiable.json["details"] == "The requested range is not satisfiable."
    assert unsatisfiable.headers["Content-Range"] == f"bytes */{len(audio)}"  # RFC 9110 §15.5.17
    assert "Content-Range" not in whole.headers
    # Another account, an unknown id: not found.
    for path, pair_ in ((unique_id, other_pair), ("run_999999", pair)):
        response = client.get(f"{BASE}/calls/{path}/recording", headers=auth(pair_))
        assert (response.status_code, response.json["details"]) == (404, "Call not found.")


def test_no_recording_for_unanswered_or_verification_calls(client, gw, sim, pair, india, clip):
    sim.set_outcome("+919812345486", Outcome(final=486, provisional=None))
    busy = client.post(f"{BASE}/calls", json={"type": "audio_blast", "number": "9812345486", "audio_id": clip.id},
                       headers=auth(pair)).json["unique_id"]
    wait_final(gw, PublicRun.get_by_id(int(busy[4:])).call_uuid)
    otp = client.post(f"{BASE}/otp/send", json={"number": "9812345678"}, headers=auth(pair)).json["request_id"]
    wait_final(gw, OtpRequest.get_by_id(otp).call_uuid)
    for unique_id in (busy, otp):
        response = client.get(f"{BASE}/calls/{unique_id}/recording", headers=auth(pair))
        assert response.json == {"status": "error", "code": 404, "unique_id": response.json["unique_id"],
                                 "reference_id": None, "details": "No recording is available for this call."}
        assert response.status_code == 404
    assert Recording.select().count() == 0

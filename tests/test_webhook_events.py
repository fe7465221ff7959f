"""Every surface's status and event webhooks, end to end: a status change goes through the
controller's write path (``store.apply`` with ``outbox_hook``), the dispatcher delivers it
to a real receiver on 127.0.0.1, and the body and headers are the contract's."""
import re
from datetime import datetime, timedelta, timezone

import pytest

from gateway.calls import store
from gateway.calls.states import EndReason, Status, Transition
from gateway.models import Account, Agent, Call, CallEvent, WebhookDelivery, utcnow
from gateway.webhooks import signing
from gateway.webhooks.dispatcher import Dispatcher
from gateway.webhooks.outbox import enqueue_processing_completed, outbox_hook, outbox_log_hook
from gateway.webhooks.subscriptions import set_subscription
from webhook_support import (  # noqa: F401
    answered,
    completed,
    established_entry,
    failed,
    make_call,
    missed,
    move,
    receiver,
    ringing,
    verify_raw_body,
    verify_signature,
)

T1 = datetime(2026, 2, 9, 14, 30, 5, tzinfo=timezone.utc)
T2 = datetime(2026, 2, 9, 14, 30, 50, tzinfo=timezone.utc)
EVT = re.compile(r"evt_[0-9a-f]{32}")
TRANSPORT = {"host", "content-length", "accept", "accept-encoding", "connection"}

pytestmark = pytest.mark.usefixtures("loopback_allowed")


@pytest.fixture
def dispatcher(database):
    return Dispatcher(database, backoff_base=0.01, backoff_cap=0.05, request_timeout=2, lease=5)


def deliver_all(dispatcher):
    dispatcher.run_until_idle()


def check_signatures(request, secret, signature_header="x-signature"):
    """Both verifiers of the contracts, and the timestamped check, accept the delivery."""
    assert re.fullmatch(r"sha256=[0-9a-f]{64}", request.headers[signature_header])
    assert verify_signature(secret, request.json(), request.headers[signature_header])
    assert verify_raw_body(request.body, request.headers[signature_header], secret)
    assert signing.verify_timestamped(secret, request.body, request.headers["x-webhook-signature"])
    assert request.body == signing.canonical_json(request.json())


def our_headers(request):
    return {k: v for k, v in request.headers.items() if k not in TRANSPORT}


# -- call control (/api) -------------------------------------------------------------------------


def test_control_status_callbacks(database, receiver, dispatcher):
    account = Account.create(name="acme")
    call = make_call(account, surface="api", webhook_url=receiver.url("/route-call"))
    move(call, ringing(), answered(T1))
    move(call, completed(T2, billsec=45))
    deliver_all(dispatcher)

    answered_request, completed_request = receiver.requests
    assert answered_request.path == "/route-call"  # "to the same webhook_url"
    assert answered_request.json() == {
        "event_type": "call.answered", "call_uuid": call.uuid, "timestamp": "2026-02-09T14:30:05Z",
        "call_status": "in-progress"}
    assert completed_request.json() == {
        "event_type": "call.completed", "call_uuid": call.uuid, "timestamp": "2026-02-09T14:30:50Z",
        "call_status": "completed", "duration": 45, "hangup_cause": "NORMAL_CLEARING"}
    for request, event_type in ((answered_request, "call.answered"), (completed_request, "call.completed")):
        headers = our_headers(request)
        assert set(headers) == {"content-type", "user-agent", "x-call-uuid", "x-signature", "x-webhook-id",
                                "x-webhook-event", "x-webhook-signature"}
        assert headers["content-type"] == "application/json"
        assert headers["user-agent"] == "VoiceAPI/1.0"
        assert headers["x-call-uuid"] == call.uuid
        assert headers["x-webhook-event"] == event_type
        assert EVT.fullmatch(headers["x-webhook-id"])
        check_signatures(request, account.webhook_secret)
    assert [d.status for d in WebhookDelivery.select().order_by(WebhookDelivery.id)] == ["delivered"] * 2


@pytest.mark.parametrize("transition, call_status, cause", [
    (missed(T2), "no-answer", "NO_ANSWER"),
    (failed(T2), "busy", "USER_BUSY"),
    (failed(T2, cause="CALL_REJECTED", reason=EndReason.REJECTED), "busy", "CALL_REJECTED"),
    (failed(T2, cause="NORMAL_TEMPORARY_FAILURE", reason=EndReason.FAILED), "failed", "NORMAL_TEMPORARY_FAILURE"),
])
def test_control_completed_for_unanswered_calls(database, receiver, dispatcher, transition, call_status, cause):
    account = Account.create(name="acme", default_webhook_url=receiver.url("/default"))
    call = make_call(account, surface=None, direction="inbound")  # inbound: the call-control callbacks
    move(call, ringing(), transition)
    deliver_all(dispatcher)
    (request,) = receiver.requests
    assert request.path == "/default"
    assert request.json() == {"event_type": "call.completed", "call_uuid": call.uuid,
                              "timestamp": "2026-02-09T14:30:50Z", "call_status": call_status,
                              "duration": 0, "hangup_cause": cause}


# -- agent calls (/v1) ---------------------------------------------------------------------------


def test_agent_events(database, receiver, dispatcher):
    account = Account.create(name="acme")
    agent = Agent.create(account=account, key="akylai", name="Home Loan Agent", driver="elevenlabs",
                         driver_ref="agent_123")
    set_subscription(account, "v1", url=receiver.url("/webhook"))
    call = make_call(account, surface="v1", agent=agent, to_number="+919876543210", contact_name="Rahul Sharma",
                     custom_args={"name": "Rahul Sharma", "product": "Home Loan"})
    move(call, ringing(), answered(T1))
    move(call, completed(T2, billsec=47))
    with database.atomic():
        Call.update(transcript=[{"bot": "Hi Rahul"}, {"user": "Yes"}],
                    analysis={"summary": "Interested", "classification": "Interested"},
                    recording_url="https://cdn.example.com/r/1.mp3").where(Call.uuid == call.uuid).execute()
        enqueue_processing_completed(Call.get_by_id(call.uuid), at=T2 + timedelta(seconds=25))
    deliver_all(dispatcher)

    started, ended, processed = receiver.requests
    common = {
        "call_id": call.uuid, "phone_number": "+919876543210", "contact_name": "Rahul Sharma",
        "agent_id": str(agent.id), "agent_name": "Home Loan Agent", "direction": "outbound",
        "campaign_id": None, "custom_args": {"name": "Rahul Sharma", "product": "Home Loan"},
        "called_at": "2026-02-09T14:29:50Z",
    }
    assert started.json() == {**common, "event": "call_started", "status": "in_progress", "duration_seconds": None,
                              "recording_url": None, "transcript": None, "analysis": None,
                              "timestamp": "2026-02-09T14:30:05Z"}
    assert ended.json() == {**common, "event": "call_completed", "status": "completed", "duration_seconds": 47,
                            "recording_url": None, "transcript": None, "analysis": None,
                            "timestamp": "2026-02-09T14:30:50Z"}
    assert processed.json() == {**common, "event": "all_processing_completed", "status": "completed",
                                "duration_seconds": 47, "recording_url": "https://cdn.example.com/r/1.mp3",
                                "transcript": [{"bot": "Hi Rahul"}, {"user": "Yes"}],
                                "analysis": {"summary": "Interested", "classification": "Interested"},
                                "timestamp": "2026-02-09T14:31:15Z"}
    for request, event in ((started, "call_started"), (ended, "call_completed"),
                           (processed, "all_processing_completed")):
        headers = our_headers(request)
        assert set(headers) == {"content-type", "user-agent", "x-voicegw-event", "x-voicegw-signature",
                                "x-webhook-id", "x-webhook-signature"}
        assert headers["content-type"] == "application/json"
        assert headers["user-agent"] == "Voicegw-Webhooks/1.0"
        assert headers["x-voicegw-event"] == event
        check_signatures(request, account.webhook_secret, "x-voicegw-signature")


# -- public calling API --------------------------------------------------------------------------


def test_public_call_events(database, receiver, dispatcher):
    account = Account.create(name="acme", timezone="Asia/Kolkata")
    set_subscription(account, "public", url=receiver.url("/events"))
    call = make_call(account, surface="public", from_number="07965318581", to_number="+919812345678")
    other_missed = make_call(account, surface="public", to_number="+919812345679")
    other_failed = make_call(account, surface="public", to_number="+919812345670")
    move(call, ringing(), answered(T1))
    move(call, completed(T2, billsec=42))
    move(other_missed, ringing(), missed(T2))
    move(other_failed, failed(T2, cause="CALL_REJECTED", reason=EndReason.REJECTED))
    deliver_all(dispatcher)

    by_call = {}
    for request in receiver.requests:
        by_call.setdefault(request.json()["data"]["call_id"], []).append(request)
    obj = {"unique_id": call.uuid, "call_id": call.uuid, "direction": "outbound", "from_number": "07965318581",
           "to_number": "+919812345678", "campaign_id": None, "reference_id": None,
           "created_at": "2026-02-09T19:59:50+05:30"}
    events = [r.json() for r in by_call[call.uuid]]
    ids = [e["id"] for e in events]
    assert all(EVT.fullmatch(i) for i in ids) and len(set(ids)) == 3
    assert events == [
        {"id": ids[0], "event": "call.ringing", "created_at": "2026-02-09T20:00:00+05:30",
         "data": {**obj, "status": "ringing", "end_reason": None, "duration_sec": None}},
        {"id": ids[1], "event": "call.in_progress", "created_at": "2026-02-09T20:00:05+05:30",
         "data": {**obj, "status": "in_progress", "end_reason": None, "duration_sec": None}},
        {"id": ids[2], "event": "call.completed", "created_at": "2026-02-09T20:00:50+05:30",
         "data": {**obj, "status": "completed", "end_reason": "completed", "duration_sec": 42}},
    ]
    assert [(r.json()["event"], r.json()["data"]["status"], r.json()["data"]["end_reason"])
            for r in by_call[other_missed.uuid]] == [("call.ringing", "ringing", None),
                                                     ("call.missed", "missed", "no_answer")]
    assert [(r.json()["event"], r.json()["data"]["end_reason"]) for r in by_call[other_failed.uuid]] == \
        [("call.failed", "rejected")]
    for request in receiver.requests:
        headers = our_headers(request)
        assert set(headers) == {"content-type", "user-agent", "x-call-uuid", "x-signature", "x-webhook-id",
                                "x-webhook-event", "x-webhook-signature"}
        assert headers["x-webhook-id"] == request.json()["id"]
        assert headers["x-webhook-event"] == request.json()["event"]
        check_signatures(request, account.webhook_secret)


# -- configuration -----------------------------------------------------------------------------------


def test_subscriptions_choose_events_and_destinations(database, receiver, dispatcher):
    account = Account.create(name="acme", default_webhook_url=receiver.url("/default"))
    # /v1 and public: nothing without a subscription URL.
    v1_call = make_call(account, surface="v1")
    public_call = make_call(account, surface="public")
    voice_call = make_call(account, surface="voice")
    for call in (v1_call, public_call, voice_call):
        move(call, answered(T1), completed(T2))
    assert WebhookDelivery.select().count() == 0

    # /api: only call.completed, to the subscription's URL (the call has no webhook_url).
    set_subscription(account, "api", url=receiver.url("/sub"), events=["call.completed"])
    api_call = make_call(account, surface="api")
    move(api_call, answered(T1), completed(T2))
    # the call's own webhook_url wins over the subscription's
    own = make_call(account, surface="api", webhook_url=receiver.url("/own"))
    move(own, answered(T1), completed(T2))
    # public: only the final events
    set_subscription(account, "public", url=receiver.url("/public"), events=["call.completed", "call.failed"])
    public_call = make_call(account, surface="public")
    move(public_call, ringing(), answered(T1), completed(T2))
    deliver_all(dispatcher)
    got = sorted((r.path, r.json().get("event_type") or r.json().get("event")) for r in receiver.requests)
    assert got == [("/own", "call.completed"), ("/public", "call.completed"), ("/sub", "call.completed")]

    # A disabled subscription sends nothing.
    set_subscription(account, "api", active=False)
    quiet = make_call(account, surface="api", webhook_url=receiver.url("/own"))
    move(quiet, answered(T1), completed(T2))
    assert WebhookDelivery.select().where(WebhookDelivery.call_uuid == quiet.uuid).count() == 0


def test_subscription_input_is_checked(database):
    account = Account.create(name="acme")
    with pytest.raises(ValueError, match="unknown event type"):
        set_subscription(account, "v1", events=["call.completed"])
    with pytest.raises(ValueError, match="surface 'sip' is invalid"):
        set_subscription(account, "sip", url="https://example.com/")
    with pytest.raises(ValueError, match="unknown event type"):
        set_subscription(account, "voice", events=["call.completed"])  # campaign events only
    with pytest.raises(ValueError, match="a private address"):
        set_subscription(account, "public", url="http://10.0.0.1/hook")


def test_rotated_secret_signs_and_the_previous_one_still_verifies(database, receiver, dispatcher):
    account = Account.create(name="acme")
    old = account.webhook_secret
    call = make_call(account, surface="api", webhook_url=receiver.url())
    move(call, answered(T1))
    new = Account.get_by_id(account.id).rotate_webhook_secret()
    deliver_all(dispatcher)
    (request,) = receiver.requests
    check_signatures(request, new)  # signed when sent, with the secret of that moment
    assert not verify_signature(old, request.json(), request.headers["x-signature"])
    # The timestamped header carries a signature for the previous secret too (overlap window).
    assert signing.verify_timestamped(old, request.body, request.headers["x-webhook-signature"])


# -- the outbox's transaction ------------------------------------------------------------------------


def test_webhooks_commit_with_the_status_change_or_not_at_all(database):
    account = Account.create(name="acme", default_webhook_url="https://hooks.example.com/x")
    call = make_call(account, surface="api")

    def broken(changes):
        raise RuntimeError("disk full")

    change = (call.uuid, "queued", 1, answered(T1))
    media = established_entry(call, T1, 2)
    with pytest.raises(RuntimeError):
        store.apply([change], [media], [outbox_hook, broken], [outbox_log_hook])
    assert Call.get_by_id(call.uuid).status == "queued"
    assert WebhookDelivery.select().count() == CallEvent.select().count() == 0

    store.apply([change], [media], [outbox_hook], [outbox_log_hook])
    assert Call.get_by_id(call.uuid).status == "in_progress"
    (delivery,) = WebhookDelivery.select()
    assert (delivery.event_type, delivery.status, delivery.url) == ("call.answered", "pending",
                                                                    "https://hooks.example.com/x")
    assert delivery.body == signing.canonical_json(
        {"event_type": "call.answered", "call_uuid": call.uuid, "timestamp": "2026-02-09T14:30:05Z",
         "call_status": "in-progress"}).decode()


def test_an_event_is_enqueued_once_per_call(database):
    account = Account.create(name="acme", default_webhook_url="https://hooks.example.com/x")
    call = make_call(account, surface="api")
    move(call, answered(T1), completed(T2))
    move(call, completed(T2))  # a repeated final transition (e.g. after a provider report)
    assert [d.event_type for d in WebhookDelivery.select().order_by(WebhookDelivery.id)] == \
        ["call.answered", "call.completed"]


def test_a_large_batch_is_one_transaction(database):
    account = Account.create(name="acme", default_webhook_url="https://hooks.example.com/x")
    calls = [make_call(account, surface="api") for _ in range(150)]
    changes, logs = [], []
    for n, call in enumerate(calls):
        changes.append((call.uuid, "queued", 1, answered(T1)))
        logs.append(established_entry(call, T1, 2))
        changes.append((call.uuid, "in_progress", 3, completed(T2)))
    store.apply(changes, logs, [outbox_hook], [outbox_log_hook])
    assert WebhookDelivery.select().count() == 300
    first = WebhookDelivery.select().where(WebhookDelivery.call_uuid == calls[7].uuid).order_by(WebhookDelivery.id)
    assert [d.event_type for d in first] == ["call.answered", "call.completed"]


def test_unknown_calls_and_empty_batches_are_ignored(database):
    outbox_hook([])
    outbox_hook([("no-such-call", "queued", 1, Transition(Status.RINGING, utcnow(), "x"))])
    assert WebhookDelivery.select().count() == 0


def _documented_verifier():
    """The receiver check of docs/webhooks.md, run as published."""
    import pathlib

    text = (pathlib.Path(__file__).parent.parent / "docs" / "webhooks.md").read_text()
    code = text.split("```python\n", 1)[1].split("```", 1)[0]
    namespace = {}
    exec(compile(code, "docs/webhooks.md", "exec"), namespace)
    return namespace["verify"]


def test_a_tampered_or_replayed_delivery_is_rejected(database, receiver, dispatcher, monkeypatch):
    account = Account.create(name="acme")
    move(make_call(account, surface="api", webhook_url=receiver.url()), answered(T1))
    deliver_all(dispatcher)
    (request,) = receiver.requests
    verify = _documented_verifier()
    header = request.headers["x-webhook-signature"]
    assert verify(account.webhook_secret, request.body, header)  # as delivered

    tampered = request.body.replace(b"in-progress", b"completed")
    assert not verify(account.webhook_secret, tampered, header)
    assert not verify_raw_body(tampered, request.headers["x-signature"], account.webhook_secret)

    # The same request presented again six minutes later.
    t, _ = signing.parse_timestamped(header)
    import time as time_module

    monkeypatch.setattr(time_module, "time", lambda: t + 360)
    assert not verify(account.webhook_secret, request.body, header)
    assert not signing.verify_timestamped(account.webhook_secret, request.body, header)


def test_agent_call_completed_for_an_unanswered_call(database, receiver, dispatcher):
    account = Account.create(name="acme")
    set_subscription(account, "v1", url=receiver.url("/webhook"), events=["call_completed"])
    call = make_call(account, surface="v1", transcript="agent: Hello?")  # stored as text by someone
    move(call, ringing(), missed(T2))
    deliver_all(dispatcher)
    (request,) = receiver.requests
    body = request.json()
    assert (body["event"], body["status"], body["duration_seconds"]) == ("call_completed", "no_answer", 0)
    assert body["agent_id"] is None and body["transcript"] == [{"bot": "Hello?"}]


def test_a_body_that_cannot_be_built_does_not_stall_the_batch(database, monkeypatch, caplog):
    account = Account.create(name="acme", default_webhook_url="https://hooks.example.com/x")
    good, bad = make_call(account, surface="api"), make_call(account, surface="api")
    from gateway.webhooks import events

    real = events.control_payload

    def fragile(event_type, call, state):
        if call.uuid == bad.uuid:
            raise KeyError("bug")
        return real(event_type, call, state)

    monkeypatch.setattr(events, "control_payload", fragile)
    store.apply([(good.uuid, "queued", 1, completed(T2)), (bad.uuid, "queued", 1, completed(T2))], [], [outbox_hook])
    assert {c.status for c in Call.select()} == {"completed"}
    assert [d.call_uuid for d in WebhookDelivery.select()] == [good.uuid]
    assert f"webhook events for call {bad.uuid}" in caplog.text

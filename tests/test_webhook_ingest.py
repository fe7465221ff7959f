"""``POST /v1/webhooks/call-completed`` (agent-call contract): signature, idempotency,
what is saved, and the downstream ``/v1`` events."""
import json
import time
from datetime import datetime, timedelta, timezone

import pytest
from flask import Flask

from gateway.models import Account, Agent, Call, ProviderCall, WebhookDelivery
from gateway.api.agents import ingest
from gateway.api.surface import init_app
from gateway.webhooks import signing
from gateway.webhooks.dispatcher import Dispatcher
from gateway.webhooks.events import transcript_turns
from gateway.webhooks.provider import register_provider_call
from gateway.webhooks.subscriptions import set_subscription
from webhook_support import answered, completed, make_call, move, receiver  # noqa: F401

URL = "/v1/webhooks/call-completed"
T1 = datetime(2026, 2, 9, 14, 30, 5, tzinfo=timezone.utc)

REPORT = {
    "event_type": "call.completed",
    "provider_call_id": "internal-provider-reference",
    "status": "completed",
    "transcript": "agent: Hello\nuser: Hi",
    "duration": 120,
}


@pytest.fixture
def client(database):
    app = Flask("test")
    app.config["MAX_CONTENT_LENGTH"] = 64 * 1024  # as the gateway's app sets it
    init_app(app)
    app.register_blueprint(ingest.blp)
    return app.test_client()


@pytest.fixture
def setup(database, receiver):
    account = Account.create(name="acme")
    agent = Agent.create(account=account, key="akylai", name="Akylai", driver="elevenlabs", driver_ref="ag_1")
    set_subscription(account, "v1", url=receiver.url("/webhook"))
    call = make_call(account, surface="v1", agent=agent, to_number="+996700000000")
    move(call, answered(T1))
    register_provider_call(call.uuid, "internal-provider-reference", "elevenlabs")
    return account, call


def post(client, payload, secret=None, header="X-Signature", raw=None, headers=None):
    body = raw if raw is not None else json.dumps(payload).encode()
    sent = dict(headers or {})
    if secret is not None:
        if header == "X-Webhook-Signature":
            sent[header] = signing.timestamped_signature(secret, body)
        else:
            sent[header] = signing.sign(secret, body)
    return client.post(URL, data=body, headers=sent, content_type="application/json")


pytestmark = pytest.mark.usefixtures("loopback_allowed")


def test_saves_the_result_once_and_fires_the_v1_events(client, setup, database, receiver):
    account, call = setup
    response = post(client, REPORT, account.webhook_secret)
    assert response.status_code == 200
    assert response.get_json() == {"received": True, "call_id": call.uuid, "duplicate": False}
    row = Call.get_by_id(call.uuid)
    assert row.status == "completed" and row.end_reason == "completed"  # the call was still live
    assert row.transcript == [{"bot": "Hello"}, {"user": "Hi"}]  # as GET /v1/calls shows it
    assert (row.billsec, row.duration_sec) == (120, 120)
    link = ProviderCall.get(ProviderCall.provider_call_id == "internal-provider-reference")
    assert link.status == "completed" and link.completed_at is not None and link.payload == REPORT

    # Idempotent: the same report again changes nothing and enqueues nothing.
    again = post(client, {**REPORT, "duration": 5}, account.webhook_secret)
    assert again.status_code == 200 and again.get_json()["duplicate"] is True
    assert Call.get_by_id(call.uuid).billsec == 120

    Dispatcher(database, backoff_base=0.01, request_timeout=2, lease=5).run_until_idle()
    events = [r.json() for r in receiver.requests]
    assert [e["event"] for e in events] == ["call_started", "call_completed", "all_processing_completed"]
    assert events[1]["status"] == "completed" and events[1]["duration_seconds"] == 120
    assert events[2]["transcript"] == [{"bot": "Hello"}, {"user": "Hi"}]
    agent = Agent.get(Agent.key == "akylai")
    assert events[2]["agent_id"] == str(agent.id) and events[2]["agent_name"] == "Akylai"
    assert events[2]["phone_number"] == "+996700000000"

    # FreeSWITCH's hangup arriving afterwards does not announce the end a second time.
    move(call, completed(billsec=118))
    assert WebhookDelivery.select().where(WebhookDelivery.event_type == "call_completed").count() == 1


def test_a_call_that_already_ended_keeps_its_status(client, setup, database):
    account, call = setup
    move(call, completed(billsec=100))
    response = post(client, {**REPORT, "status": "failed", "analysis": {"summary": "ok"},
                             "recording_url": "https://cdn.example.com/a.mp3"}, account.webhook_secret)
    assert response.status_code == 200
    row = Call.get_by_id(call.uuid)
    assert (row.status, row.end_reason, row.billsec) == ("completed", "completed", 100)  # FS measured it
    assert row.analysis == {"summary": "ok"} and row.recording_url == "https://cdn.example.com/a.mp3"
    types = [d.event_type for d in WebhookDelivery.select().order_by(WebhookDelivery.id)]
    assert types == ["call_started", "call_completed", "all_processing_completed"]


def test_signature_schemes_accepted(client, setup):
    account, call = setup
    # The timestamped header.
    assert post(client, REPORT, account.webhook_secret, header="X-Webhook-Signature").status_code == 200
    ProviderCall.update(completed_at=None).execute()
    # The contract's dict-based scheme: signed over the canonical JSON, sent pretty-printed.
    pretty = json.dumps(REPORT, indent=2).encode()
    headers = {"X-Signature": signing.sign(account.webhook_secret, signing.canonical_json(REPORT))}
    assert post(client, None, raw=pretty, headers=headers).get_json()["duplicate"] is False
    ProviderCall.update(completed_at=None).execute()
    # The /v1 header name, and the previous secret within the rotation overlap.
    old = account.webhook_secret
    Account.get_by_id(account.id).rotate_webhook_secret()
    assert post(client, REPORT, old, header="X-Voicegw-Signature").status_code == 200


@pytest.mark.parametrize("case", ["missing", "wrong secret", "tampered", "expired", "old secret after overlap"])
def test_bad_signatures_are_refused(client, setup, case):
    account, call = setup
    body = json.dumps(REPORT).encode()
    headers = {}
    if case == "wrong secret":
        headers["X-Signature"] = signing.sign("whsec_wrong", body)
    elif case == "tampered":
        headers["X-Signature"] = signing.sign(account.webhook_secret, body)
        body = body.replace(b"120", b"999")
    elif case == "expired":
        headers["X-Webhook-Signature"] = signing.timestamped_signature(
            account.webhook_secret, body, int(time.time()) - 301)
    elif case == "old secret after overlap":
        old = account.webhook_secret
        account = Account.get_by_id(account.id)
        account.rotate_webhook_secret(now=datetime.now(timezone.utc) - timedelta(hours=25))
        headers["X-Signature"] = signing.sign(old, body)
    response = client.post(URL, data=body, headers=headers, content_type="application/json")
    assert response.status_code == 401
    assert response.get_json() == {"error": "Invalid signature"}
    assert Call.get_by_id(call.uuid).transcript is None
    assert WebhookDelivery.select().where(WebhookDelivery.event_type == "all_processing_completed").count() == 0


def test_unknown_provider_call_id(client, setup):
    """No call has the id, so no account's secret can have signed the report: it is
    refused as a badly signed one is, and tells nobody whether the id exists."""
    account, _ = setup
    response = post(client, {**REPORT, "provider_call_id": "nope"}, account.webhook_secret)
    assert response.status_code == 401 and response.get_json() == {"error": "Invalid signature"}


def test_every_refusal_before_the_signature_answers_alike(client, setup):
    """An unknown id, badly signed or not signed at all, a known one signed with another
    account's secret or a wrong one, and a report whose fields are invalid but unsigned:
    one answer, byte for byte, and nothing changes. The signature is checked before
    anything depends on whether the id exists (the lookup only fetches the secret to
    check it with; an unknown id is checked against a random one)."""
    account, call = setup
    other = Account.create(name="globex")
    unknown = {**REPORT, "provider_call_id": "nope"}
    answers = [
        post(client, unknown, "whsec_wrong"),
        post(client, unknown),
        post(client, unknown, header="X-Webhook-Signature", secret="whsec_wrong"),
        post(client, {**unknown, "status": "exploded"}),
        post(client, REPORT, "whsec_wrong"),
        post(client, REPORT, other.webhook_secret),
        post(client, {**REPORT, "status": "exploded"}),
    ]
    first = answers[0]
    assert (first.status_code, first.get_json()) == (401, {"error": "Invalid signature"})
    for answer in answers:
        assert (answer.status_code, answer.data, sorted(answer.headers.items())) == (
            first.status_code, first.data, sorted(first.headers.items()))
    assert ProviderCall.get(ProviderCall.provider_call_id == REPORT["provider_call_id"]).completed_at is None
    assert Call.get_by_id(call.uuid).transcript is None


@pytest.mark.parametrize("raw, message", [
    (b"not json", "Invalid JSON body"),
    (b"[1]", "The body must be a JSON object"),
    (b'{"status": "completed"}', "provider_call_id is required"),
])
def test_malformed_requests(client, setup, raw, message):
    response = client.post(URL, data=raw, content_type="application/json")
    assert response.status_code == 400 and response.get_json() == {"error": message}


@pytest.mark.parametrize("change, message", [
    ({"status": "exploded"}, "status must be one of"),
    ({"status": None}, "status must be one of"),
    ({"duration": "long"}, "duration must be a number of seconds"),
    ({"duration": -1}, "duration must be a number of seconds"),
    ({"transcript": 5}, "transcript must be a string or a list"),
    ({"event_type": "call.started"}, "event_type must be call.completed"),
    ({"analysis": "good"}, "analysis must be an object"),
])
def test_invalid_fields_after_a_valid_signature(client, setup, change, message):
    account, _ = setup
    response = post(client, {**REPORT, **change}, account.webhook_secret)
    assert response.status_code == 400
    assert response.get_json()["error"].startswith(message)


@pytest.mark.parametrize("status, ours", [
    ("no-answer", ("missed", "no_answer", "NO_ANSWER")),
    ("busy", ("failed", "busy", "USER_BUSY")),
    ("failed", ("failed", "failed", "NORMAL_TEMPORARY_FAILURE")),
])
def test_provider_statuses_end_a_live_call(client, setup, status, ours):
    account, call = setup
    assert post(client, {**REPORT, "status": status, "duration": None}, account.webhook_secret).status_code == 200
    row = Call.get_by_id(call.uuid)
    assert (row.status, row.end_reason, row.hangup_cause) == ours


def test_transcript_turns():
    assert transcript_turns("agent: Hello\nuser: Hi\n\nthere") == [{"bot": "Hello"}, {"user": "Hi\nthere"}]
    assert transcript_turns("Customer: a\nnarrator: b") == [{"user": "a"}, {"narrator": "b"}]
    assert transcript_turns([{"bot": "x"}, {"assistant": None}]) == [{"bot": "x"}, {"bot": ""}]
    assert transcript_turns(None) is None
    assert transcript_turns("no speaker here") == [{"text": "no speaker here"}]


def test_large_transcripts_are_accepted(client, setup):
    account, call = setup
    long = "\n".join(f"user: {'word ' * 40}" for _ in range(500))  # ~100 KB
    assert post(client, {**REPORT, "transcript": long}, account.webhook_secret).status_code == 200
    assert len(Call.get_by_id(call.uuid).transcript) == 500

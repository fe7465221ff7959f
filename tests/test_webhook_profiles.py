"""Header profiles per subscription, each checked by a verifier written from its own
document, never by the gateway's signing code: the call-control contract's
``verify_signature``, the events contract's Express check (ported line by line), and the
``standardwebhooks`` package from PyPI."""
import base64
import hashlib
import hmac
from datetime import datetime, timedelta, timezone

import pytest
import standardwebhooks

from cli_support import cli  # noqa: F401
from gateway.calls.bot_target import BotTargets
from gateway.models import Account, Agent, WebhookDelivery, utcnow
from gateway.webhooks import profiles
from gateway.webhooks.dispatcher import Dispatcher
from gateway.webhooks.outbox import enqueue_processing_completed
from gateway.webhooks.routing import request_route
from gateway.webhooks.subscriptions import header_profile_of, set_subscription
from webhook_support import answered, completed, make_call, move, receiver, verify_signature  # noqa: F401

T1 = datetime(2026, 2, 9, 14, 30, 5, tzinfo=timezone.utc)
T2 = datetime(2026, 2, 9, 14, 30, 50, tzinfo=timezone.utc)
TRANSPORT = {"host", "content-length", "accept", "accept-encoding", "connection"}

pytestmark = pytest.mark.usefixtures("loopback_allowed")


def events_contract_verify(raw_body: bytes, signature: str, secret: str) -> bool:
    """agent-calls-events.txt's ``verifySignature`` (Express), in Python: 'sha256=' + the
    hex HMAC-SHA256 of the raw body, compared timing-safely."""
    expected = "sha256=" + hmac.new(secret.encode(), raw_body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(signature.encode(), expected.encode())


def sent_headers(request) -> dict:
    return {k: v for k, v in request.headers.items() if k not in TRANSPORT}


@pytest.fixture
def dispatcher(database):
    return Dispatcher(database, backoff_base=0.01, backoff_cap=0.05, request_timeout=2, lease=5)


def agent_call(account, receiver, profile):
    agent = Agent.create(account=account, key="akylai", name="Home Loan Agent", driver="elevenlabs",
                         driver_ref="agent_123")
    set_subscription(account, "v1", url=receiver.url("/webhook"), header_profile=profile)
    return make_call(account, surface="v1", agent=agent, to_number="+919876543210", contact_name="Rahul Sharma")


def test_events_contract_profile_is_the_contracts_headers_exactly(database, receiver, dispatcher):
    account = Account.create(name="acme")
    call = agent_call(account, receiver, "contract")
    move(call, answered(T1))
    move(call, completed(T2, billsec=47))
    dispatcher.run_until_idle()

    started, ended = receiver.requests
    for request, event in ((started, "call_started"), (ended, "call_completed")):
        headers = sent_headers(request)
        assert set(headers) == {"content-type", "x-vyora-event", "x-vyora-signature", "user-agent"}
        assert headers["content-type"] == "application/json"
        assert headers["x-vyora-event"] == event == request.json()["event"]
        assert headers["user-agent"] == "Vyora-Webhooks/1.0"
        assert events_contract_verify(request.body, headers["x-vyora-signature"], account.webhook_secret)
        assert not events_contract_verify(request.body + b" ", headers["x-vyora-signature"], account.webhook_secret)
        assert not events_contract_verify(request.body, headers["x-vyora-signature"], "whsec_other")
    assert {d.header_profile for d in WebhookDelivery.select()} == {"contract"}


def test_call_control_contract_profile_verifies_with_the_contracts_example(database, receiver, dispatcher):
    account = Account.create(name="acme")
    set_subscription(account, "api", header_profile="contract")
    call = make_call(account, surface="api", webhook_url=receiver.url("/route-call"))
    move(call, answered(T1))
    move(call, completed(T2, billsec=45))
    dispatcher.run_until_idle()

    for request in receiver.requests:
        headers = sent_headers(request)
        assert set(headers) == {"content-type", "x-call-uuid", "x-signature", "user-agent"}
        assert headers["user-agent"] == "VoiceAPI/1.0" and headers["x-call-uuid"] == call.uuid
        assert verify_signature(account.webhook_secret, request.json(), headers["x-signature"])
        assert not verify_signature("whsec_other", request.json(), headers["x-signature"])


@pytest.mark.parametrize("surface", ["api", "v1", "public"])
def test_standard_webhooks_profile_verifies_with_the_standardwebhooks_package(database, receiver, dispatcher,
                                                                               surface):
    account = Account.create(name="acme")
    if surface == "v1":
        call = agent_call(account, receiver, "standard-webhooks")
    else:
        set_subscription(account, surface, url=receiver.url("/hook"), header_profile="standard-webhooks")
        call = make_call(account, surface=surface)
    move(call, answered(T1))
    move(call, completed(T2))
    dispatcher.run_until_idle()

    assert receiver.requests
    wh = standardwebhooks.Webhook(profiles.standard_webhooks_secret(account.webhook_secret))
    ids = []
    for request in receiver.requests:
        headers = sent_headers(request)
        assert {"webhook-id", "webhook-timestamp", "webhook-signature"} <= set(headers)
        assert not {"x-signature", "x-webhook-signature", "x-voicegw-signature"} & set(headers)
        assert wh.verify(request.body, headers) == request.json()
        with pytest.raises(standardwebhooks.webhooks.WebhookVerificationError):
            wh.verify(request.body.replace(b"}", b',"x":1}', 1), headers)
        ids.append(headers["webhook-id"])
    assert ids == [d.event_id for d in WebhookDelivery.select().order_by(WebhookDelivery.id)]


def test_standard_webhooks_signs_with_both_secrets_during_a_rotation(database, receiver, dispatcher):
    account = Account.create(name="acme")
    old = account.webhook_secret
    account.rotate_webhook_secret()
    call = agent_call(account, receiver, "standard-webhooks")
    move(call, answered(T1))
    dispatcher.run_until_idle()
    (request,) = receiver.requests
    assert len(request.headers["webhook-signature"].split(" ")) == 2
    for secret in (old, account.webhook_secret):
        standardwebhooks.Webhook(profiles.standard_webhooks_secret(secret)).verify(request.body, request.headers)


def test_standard_webhooks_secret_is_the_same_key_in_base64():
    # Written from the specification: whsec_ + base64 of the key bytes; the signature is
    # base64(HMAC-SHA256(key, "<id>.<timestamp>.<body>")).
    secret = "whsec_abc-_123"
    encoded = profiles.standard_webhooks_secret(secret)
    assert encoded.startswith("whsec_") and base64.b64decode(encoded[6:]) == secret.encode()
    body = b'{"a":1}'
    expected = base64.b64encode(hmac.new(secret.encode(), b"evt_1.1700000000." + body, hashlib.sha256).digest())
    assert profiles.standard_signature([secret], "evt_1", 1700000000, body) == "v1," + expected.decode()


def test_a_stale_standard_webhooks_timestamp_is_refused_by_the_package(database, receiver):
    account = Account.create(name="acme")
    body = b'{"event":"x"}'
    headers = profiles.signature_headers("standard-webhooks", "v1", [account.webhook_secret], body, "evt_1",
                                         timestamp=int((utcnow() - timedelta(minutes=10)).timestamp()))
    headers["webhook-id"] = "evt_1"
    with pytest.raises(standardwebhooks.webhooks.WebhookVerificationError, match="too old"):
        standardwebhooks.Webhook(profiles.standard_webhooks_secret(account.webhook_secret)).verify(body, headers)


def test_the_gateway_profile_stays_the_default(database, receiver, dispatcher):
    account = Account.create(name="acme")
    set_subscription(account, "v1", url=receiver.url("/webhook"))
    call = make_call(account, surface="v1")
    move(call, answered(T1))
    dispatcher.run_until_idle()
    (request,) = receiver.requests
    assert set(sent_headers(request)) == {"content-type", "user-agent", "x-voicegw-event", "x-voicegw-signature",
                                          "x-webhook-id", "x-webhook-signature"}
    assert header_profile_of(account.id, "v1") == "gateway"


def test_a_delivery_keeps_the_profile_it_was_queued_with(database, receiver, dispatcher):
    account = Account.create(name="acme")
    call = agent_call(account, receiver, "contract")
    move(call, answered(T1))
    set_subscription(account, "v1", header_profile="standard-webhooks")
    with database.atomic():
        enqueue_processing_completed(call)
    dispatcher.run_until_idle()
    first, second = receiver.requests
    assert "x-vyora-signature" in first.headers and "webhook-signature" in second.headers


def test_profiles_a_surface_does_not_offer_are_refused(database):
    account = Account.create(name="acme")
    with pytest.raises(ValueError, match="public's contract names no webhook headers"):
        set_subscription(account, "public", header_profile="contract")
    with pytest.raises(ValueError, match="header profile 'svix' is invalid"):
        set_subscription(account, "v1", header_profile="svix")
    assert not list(account.webhook_subscriptions)


# -- the routing webhook: the account's api subscription's profile --------------------------------


def route(receiver, secret, profile):
    return request_route(url=receiver.url("/route"), secret=secret, call_uuid="550e8400-e29b-41d4-a716-446655440000",
                         direction="inbound", caller_number="5511999999999", destination_number="5511888888888",
                         account_id=12, header_profile=profile)


def test_routing_webhook_in_the_contract_profile(receiver):
    route(receiver, "whsec_route", "contract")
    (request,) = receiver.requests
    headers = sent_headers(request)
    assert set(headers) == {"content-type", "x-call-uuid", "x-signature", "user-agent"}
    assert verify_signature("whsec_route", request.json(), headers["x-signature"])


def test_routing_webhook_in_the_standard_webhooks_profile(receiver):
    route(receiver, "whsec_route", "standard-webhooks")
    (request,) = receiver.requests
    payload = standardwebhooks.Webhook(profiles.standard_webhooks_secret("whsec_route")).verify(
        request.body, request.headers)
    assert request.headers["webhook-id"] == payload["request_id"]


def test_the_routing_webhook_is_asked_in_the_api_subscriptions_profile(database):
    account = Account.create(name="acme")
    set_subscription(account, "api", header_profile="standard-webhooks")
    call = make_call(account, surface="api", webhook_url="https://hooks.example.com/route")
    asked = []

    def request_route(**request):
        asked.append(request)
        return None

    BotTargets(request_route, "NORMAL_CLEARING", lambda uuid, entry: None).route(call, account, call.webhook_url)
    assert asked[0]["header_profile"] == "standard-webhooks"
    assert asked[0]["secret"] == account.webhook_secret


# -- the CLI ---------------------------------------------------------------------------------


def test_cli_sets_the_profile_and_prints_the_secret_in_its_form(cli):
    account = Account.create(name="acme")
    doc = cli.json("webhooks", "subscribe", "acme", "v1", "--url", "http://127.0.0.1:9/v1",
                   "--header-profile", "contract")
    assert doc["header_profile"] == "contract"
    assert cli.json("webhooks", "signing-secret", "acme", "v1")["webhook_secret"] == account.webhook_secret
    out = cli("webhooks", "subscribe", "acme", "v1", "--header-profile", "standard-webhooks")
    assert "headers standard-webhooks" in out and "signing-secret" in out
    shown = cli.json("webhooks", "signing-secret", "acme", "v1")["webhook_secret"]
    signed = standardwebhooks.Webhook(shown).sign("evt_1", T1, b"{}")
    key = account.webhook_secret.encode()
    assert signed == "v1," + base64.b64encode(hmac.new(key, f"evt_1.{int(T1.timestamp())}.{{}}".encode(),
                                                       hashlib.sha256).digest()).decode()
    assert "standard-webhooks" in cli("webhooks", "subscriptions", "acme")
    cli.fails("webhooks", "subscribe", "acme", "public", "--header-profile", "contract",
              match="names no webhook headers")

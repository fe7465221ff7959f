"""Provider reports through the whole app: a plain-WebSocket agent reporting by the
gateway's call id, signed as docs/webhooks.md says (computed here from that text, not
with the gateway's signing code); the provider's duration kept beside ours and shown by
``GET /v1/calls/{id}``; the endpoint in the OpenAPI document."""
import hashlib
import hmac
import json
import time
import uuid

import pytest

from api_support import account_a, account_b, bearer, gw, key_a, make_agent  # noqa: F401
from gateway.models import Call, ProviderCall
from gateway.webhooks.provider import register_provider_call
from webhook_support import answered, completed, make_call, move

URL = "/v1/webhooks/call-completed"


@pytest.fixture
def client(gw):  # noqa: F811
    return gw.app.test_client()


def signed(secret: str, body: bytes) -> dict:
    """docs/webhooks.md: X-Webhook-Signature: t=<unix>,v1=<hex HMAC-SHA256(secret, "<t>." + body)>."""
    t = int(time.time())
    digest = hmac.new(secret.encode(), f"{t}.".encode() + body, hashlib.sha256).hexdigest()
    return {"X-Webhook-Signature": f"t={t},v1={digest}", "Content-Type": "application/json"}


def report(client, secret, **fields):
    body = json.dumps({"event_type": "call.completed", "status": "completed", **fields}).encode()
    return client.post(URL, data=body, headers=signed(secret, body))


def test_a_websocket_agent_reports_by_the_call_uuid(client, account_a, account_b, key_a):  # noqa: F811
    agent = make_agent(account_a)
    call = make_call(account_a, surface="v1", agent=agent)
    move(call, answered())
    answer = report(client, account_a.webhook_secret, provider_call_id=call.uuid,
                    transcript="agent: Hello\nuser: Hi", duration=42)
    assert answer.status_code == 200
    assert answer.json == {"received": True, "call_id": call.uuid, "duplicate": False}
    link = ProviderCall.get(ProviderCall.call == call.uuid)
    assert (link.provider, link.provider_call_id, link.duration) == ("websocket", call.uuid, 42)
    record = client.get(f"/v1/calls/{call.uuid}", headers=bearer(key_a)).json
    assert record["transcript"] == [{"bot": "Hello"}, {"user": "Hi"}] and record["status"] == "completed"
    again = report(client, account_a.webhook_secret, provider_call_id=call.uuid, duration=1)
    assert again.json["duplicate"] is True and ProviderCall.get_by_id(link.id).duration == 42

    # Not by another spelling of the uuid, not with another account's secret.
    refused = [report(client, account_a.webhook_secret, provider_call_id=call.uuid.upper()),
               report(client, account_b.webhook_secret, provider_call_id=call.uuid)]
    assert [(r.status_code, r.json) for r in refused] == [(401, {"error": "Invalid signature"})] * 2


def test_a_native_providers_call_is_not_reported_by_its_uuid(client, account_a):  # noqa: F811
    agent = make_agent(account_a, driver="elevenlabs", driver_ref="agent_1")
    call = make_call(account_a, surface="v1", agent=agent)
    register_provider_call(call.uuid, "conv_123", "elevenlabs")
    assert report(client, account_a.webhook_secret, provider_call_id=call.uuid).status_code == 401
    assert report(client, account_a.webhook_secret, provider_call_id="conv_123").status_code == 200


def test_the_providers_duration_is_kept_beside_ours(client, account_a, key_a):  # noqa: F811
    agent = make_agent(account_a, driver="vapi", driver_ref="asst_1")
    call = make_call(account_a, surface="v1", agent=agent)
    register_provider_call(call.uuid, "vapi-call-1", "vapi")
    move(call, answered(), completed(billsec=100))
    assert report(client, account_a.webhook_secret, provider_call_id="vapi-call-1", duration=130.4).status_code == 200
    record = client.get(f"/v1/calls/{call.uuid}", headers=bearer(key_a)).json
    assert (record["duration_seconds"], record["provider_duration_seconds"]) == (100, 130)
    assert Call.get_by_id(call.uuid).billsec == 100  # FreeSWITCH's measure is what was billed


def test_a_call_without_a_report_has_no_provider_duration(client, account_a, key_a):  # noqa: F811
    call = make_call(account_a, surface="v1", agent=make_agent(account_a))
    assert client.get(f"/v1/calls/{call.uuid}", headers=bearer(key_a)).json["provider_duration_seconds"] is None


def test_the_ingest_endpoint_is_in_the_openapi_document(client):
    spec = client.get("/openapi.json").json
    operation = spec["paths"][URL]["post"]
    assert {"200", "400", "401", "413"} <= set(operation["responses"])
    assert operation["security"] == [{"WebhookSignature": []}, {"PayloadSignature": []}]
    assert "provider_call_id" in json.dumps(operation["requestBody"])
    record = spec["components"]["schemas"]["AgentCall"]["properties"]
    assert "provider_duration_seconds" in record


def test_an_unknown_uuid_is_refused_like_any_unknown_id(client, account_a):  # noqa: F811
    answer = report(client, account_a.webhook_secret, provider_call_id=str(uuid.uuid4()))
    assert (answer.status_code, answer.json) == (401, {"error": "Invalid signature"})

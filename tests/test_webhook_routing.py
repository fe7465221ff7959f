"""The routing webhook against a real receiver on 127.0.0.1 (call-control contract)."""
import json
import re
import time

import pytest

from gateway.webhooks import signing
from gateway.webhooks.routing import RouteDecision, parse_answer, request_route
from webhook_support import Reply, receiver, verify_raw_body, verify_signature  # noqa: F401

SECRET = "whsec_routing_test"
CALL_UUID = "550e8400-e29b-41d4-a716-446655440000"


def route(receiver, timeout=3.0, url=None):
    return request_route(url=url or receiver.url("/route-call"), secret=SECRET, call_uuid=CALL_UUID,
                         direction="inbound", caller_number="5511999999999",
                         destination_number="5511888888888", account_id=12, timeout=timeout)


def answer(receiver, body, status=200, delay=0.0):
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    receiver.script(Reply(status, raw, delay))


def test_request_body_and_headers_are_the_contracts(receiver, loopback_allowed):
    answer(receiver, {"action": "connect", "socket_url": "wss://bot.example.com/media/stream"})
    route(receiver)
    (request,) = receiver.requests
    assert request.method == "POST" and request.path == "/route-call"
    body = request.json()
    assert set(body) == {"event_type", "call_uuid", "timestamp", "direction", "caller_number",
                         "destination_number", "account_id", "request_id"}
    assert body["event_type"] == "call.routing_request"
    assert body["call_uuid"] == CALL_UUID
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", body["timestamp"])
    assert body["direction"] == "inbound"
    assert body["caller_number"] == "5511999999999"
    assert body["destination_number"] == "5511888888888"
    assert body["account_id"] == "12"
    assert re.fullmatch(r"req_[0-9a-f]{24}", body["request_id"])
    assert request.body == signing.canonical_json(body)  # the exact bytes are canonical
    headers = request.headers
    assert headers["content-type"] == "application/json"
    assert headers["x-call-uuid"] == CALL_UUID
    assert headers["user-agent"] == "VoiceAPI/1.0"
    assert re.fullmatch(r"sha256=[0-9a-f]{64}", headers["x-signature"])
    assert verify_signature(SECRET, body, headers["x-signature"])
    assert verify_raw_body(request.body, headers["x-signature"], SECRET)
    assert signing.verify_timestamped(SECRET, request.body, headers["x-webhook-signature"])


def test_connect(receiver, loopback_allowed):
    answer(receiver, {"action": "connect", "socket_url": "wss://bot.example.com/media/stream", "timeout": 30})
    assert route(receiver) == RouteDecision("connect", socket_url="wss://bot.example.com/media/stream", timeout=30)


def test_connect_without_a_session_timeout_and_to_a_native_provider(receiver, loopback_allowed):
    answer(receiver, {"action": "connect", "socket_url": "wss://bot.example.com/media"})
    assert route(receiver) == RouteDecision("connect", socket_url="wss://bot.example.com/media")
    answer(receiver, {"action": "connect", "socket_url": "elevenlabs&tVvN123"})
    assert route(receiver) == RouteDecision("connect", socket_url="elevenlabs&tVvN123")


def test_hangup_with_reason(receiver, loopback_allowed):
    answer(receiver, {"action": "hangup", "reason": "business_hours_closed"})
    assert route(receiver) == RouteDecision("hangup", reason="business_hours_closed")
    answer(receiver, {"action": "hangup"})
    assert route(receiver) == RouteDecision("hangup")


def test_timeout_uses_the_default_within_three_seconds(receiver, loopback_allowed):
    answer(receiver, {"action": "hangup", "reason": "too late"}, delay=4.0)
    started = time.monotonic()
    decision = route(receiver)
    elapsed = time.monotonic() - started
    assert decision.action == "default"
    assert decision.detail == "timeout: no answer within 3s"
    assert 2.9 <= elapsed < 3.3, elapsed  # the call is not held longer than the contract's 3 s
    assert len(receiver.requests) == 1  # no retry


def test_server_error_uses_the_default_without_retry(receiver, loopback_allowed):
    answer(receiver, {"action": "connect", "socket_url": "wss://x.example.com/"}, status=500)
    assert route(receiver) == RouteDecision("default", detail="HTTP 500")
    assert len(receiver.requests) == 1


@pytest.mark.parametrize("body, detail", [
    (b"<html>oops</html>", "the answer is not JSON"),
    (b"\xff\xfe", "the answer is not JSON"),
    (b"", "the answer is not JSON"),
    (b"[1, 2]", "the answer is not a JSON object"),
    (b'{"socket_url": "wss://x.example.com/"}', "the answer has no action"),
    (b'{"action": "transfer"}', "unknown action 'transfer'"),
    (b'{"action": "connect"}', "connect: socket_url is empty"),
    (b'{"action": "connect", "socket_url": "http://x.example.com/"}', "connect: socket_url"),
    (b'{"action": "connect", "socket_url": "wss://x.example.com/", "timeout": "30"}', "connect: timeout '30'"),
    (b'{"action": "connect", "socket_url": "wss://x.example.com/", "timeout": -1}', "connect: timeout -1"),
    (b'{"action": "hangup", "reason": 5}', "hangup: reason is not a string"),
])
def test_garbage_answers_use_the_default(receiver, loopback_allowed, body, detail):
    answer(receiver, body)
    decision = route(receiver)
    assert decision.action == "default"
    assert decision.detail.startswith(detail), decision.detail


def test_unreachable_receiver_uses_the_default(receiver, loopback_allowed):
    url = receiver.url()
    receiver.down()
    started = time.monotonic()
    decision = route(receiver, url=url)
    assert decision.action == "default" and decision.detail == "request failed: ConnectionError"
    assert time.monotonic() - started < 1


def test_refused_url_uses_the_default_and_sends_nothing(receiver):
    decision = route(receiver)  # 127.0.0.1 without the allowlist
    assert decision.action == "default"
    assert decision.detail.startswith("refused url: 127.0.0.1 resolves to 127.0.0.1, a loopback address")
    assert receiver.requests == []
    assert route(receiver, url="ftp://example.com/").detail.startswith("refused url:")


def test_redirects_are_not_followed(receiver, loopback_allowed):
    receiver.script(Reply(302, b""))
    assert route(receiver) == RouteDecision("default", detail="HTTP 302")
    assert len(receiver.requests) == 1


def test_parse_answer_accepts_any_2xx_and_whole_float_timeouts():
    assert parse_answer(201, b'{"action": "hangup"}') == RouteDecision("hangup")
    assert parse_answer(200, b'{"action": "connect", "socket_url": "vapi", "timeout": 30.0}') == \
        RouteDecision("connect", socket_url="vapi", timeout=30)

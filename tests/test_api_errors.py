"""Authentication, body checks, error shapes per surface, the OpenAPI document, per-request
database connections; on SQLite and PostgreSQL."""

from __future__ import annotations

import io
import logging

import pytest
from playhouse.pool import PooledDatabase

from api_support import *  # noqa: F401,F403 -- fixtures
from api_support import bearer, headers, make_agent
from gateway.api import errors, ratelimit
from gateway.api.errors import fail
from gateway.auth.keys import create_key, revoke_key
from gateway.models import Account, Call

ENDPOINTS = [
    ("post", "/api/calls"),
    ("post", "/api/calls/hangup"),
    ("post", "/api/calls/transfer"),
    ("post", "/api/calls/redirect"),
    ("get", "/api/calls/5f3c8b2a-1d4e-4a9c-9e7b-2c6f0a1b3d8e"),
    ("post", "/v1/calls"),
    ("get", "/v1/calls/5f3c8b2a-1d4e-4a9c-9e7b-2c6f0a1b3d8e"),
    ("get", "/v1/agents"),
]
POSTS = [path for method, path in ENDPOINTS if method == "post"]
# Every case of a check runs in one test: each test costs a gateway and a database.


def request(client, method, path, **kwargs):
    if method == "post":
        kwargs.setdefault("json", {})
    return getattr(client, method)(path, **kwargs)


# -- authentication ------------------------------------------------------------------------


def test_every_endpoint_needs_a_valid_key(client, account_a):
    for method, path in ENDPOINTS:
        missing = request(client, method, path)
        assert (missing.status_code, missing.json) == (401, {
            "error": "Missing API key: send it in the X-API-KEY header or as Authorization: Bearer"}), path
        for auth in ({"X-API-KEY": "sk_live_wrong"}, {"Authorization": "Bearer sk_live_wrong"},
                     {"Authorization": "Basic c2tfbGl2ZV93cm9uZzo="}, {"Authorization": "Bearer "}):
            response = request(client, method, path, headers=auth)
            assert response.status_code == 401, (path, auth)
        wrong = request(client, method, path, headers={"X-API-KEY": "sk_live_wrong"})
        assert wrong.json == {"error": "Invalid API key"}, path


def test_key_in_either_header(client, key_a):
    for auth in (headers(key_a), bearer(key_a), {"authorization": f"bearer {key_a}"},
                 {"X-API-KEY": "", "Authorization": f"Bearer {key_a}"}):
        assert client.get("/v1/agents", headers=auth).status_code == 200, auth


def test_revoked_keys_and_inactive_accounts_are_403(client, account_a):
    api_key, secret = create_key(account_a)
    assert client.get("/v1/agents", headers=headers(secret)).status_code == 200
    revoke_key(api_key)
    response = client.get("/v1/agents", headers=headers(secret))
    assert (response.status_code, response.json) == (403, {"error": "This API key has been revoked"})

    _, secret = create_key(account_a)
    Account.update(status="suspended").where(Account.id == account_a.id).execute()
    response = client.post("/api/calls", json={"destination_number": "+12125550101"}, headers=headers(secret))
    assert (response.status_code, response.json) == (403, {"error": "This account is suspended"})
    Account.update(status="active", api_enabled=False).where(Account.id == account_a.id).execute()
    response = client.get("/v1/agents", headers=bearer(secret))
    assert (response.status_code, response.json) == (403, {"error": "API access is disabled for this account"})
    assert Call.select().count() == 0


def test_rate_limit_is_429_with_retry_after(client, key_a, key_b, account_a, monkeypatch):
    monkeypatch.setattr(ratelimit, "clock", lambda: 1_800_000_015.2)  # one minute's window throughout
    Account.update(rate_limit_per_minute=3).where(Account.id == account_a.id).execute()
    for _ in range(3):
        assert client.get("/v1/agents", headers=headers(key_a)).status_code == 200
    response = client.get("/v1/agents", headers=headers(key_a))
    assert response.status_code == 429
    assert response.json == {"error": "Rate limit exceeded: 3 requests per minute"}
    assert 1 <= int(response.headers["Retry-After"]) <= 60
    assert client.get("/v1/agents", headers=headers(key_b)).status_code == 200  # per account
    # /api counts in a bucket of its own (tests/test_rate_limits.py)
    assert client.post("/api/calls", json={}, headers=headers(key_a)).status_code == 400


# -- bodies --------------------------------------------------------------------------------


def test_non_json_bodies_are_415(client, key_a):
    for path in POSTS:
        for kwargs in ({"data": "destination_number=+12125550101",
                        "content_type": "application/x-www-form-urlencoded"},
                       {"data": '{"call_uuid": "x"}', "content_type": "text/plain"},
                       {}):
            response = client.post(path, headers=headers(key_a), **kwargs)
            assert (response.status_code, response.json) == (415, {
                "error": "Unsupported media type: send the body as application/json"}), (path, kwargs)


def test_malformed_json_bodies_are_400(client, key_a):
    for path in POSTS:
        for data, message in (('{"call_uuid": ', "Request body is not valid JSON"),
                              (b"\xff\xfe{", "Request body is not valid JSON"),
                              ("", "Request body is empty: send a JSON object"),
                              ('["call_uuid"]', "Request body must be a JSON object"),
                              ("null", "Request body must be a JSON object"),
                              ("[" * 5000 + "]" * 5000, "Request body is not valid JSON")):  # too deep
            response = client.post(path, data=data, content_type="application/json", headers=headers(key_a))
            assert (response.status_code, response.json) == (400, {"error": message}), (path, data[:20])


def test_oversized_bodies_are_413(client, key_a):
    body = '{"destination_number": "' + "1" * (64 * 1024) + '"}'
    for path in POSTS:
        response = client.post(path, data=body, content_type="application/json", headers=headers(key_a))
        assert (response.status_code, response.json) == (413, {
            "error": "Request body is too large; the limit is 65536 bytes"}), path
    # Unauthenticated too: the size is checked before anything else.
    assert client.post("/v1/calls", data=body, content_type="application/json").status_code == 413


def test_oversized_chunked_body_is_413(client, key_a):
    body = b'{"destination_number": "' + b"1" * (64 * 1024) + b'"}'
    environ = {"wsgi.input_terminated": True}  # as a server that de-chunks sets it
    response = client.post("/api/calls", input_stream=io.BytesIO(body), environ_overrides=environ,
                           headers={**headers(key_a), "Content-Type": "application/json",
                                    "Transfer-Encoding": "chunked"})
    assert response.status_code == 413
    assert response.json == {"error": "Request body is too large; the limit is 65536 bytes"}


def test_charset_and_json_suffix_media_types_are_json(client, key_a):
    for content_type in ("application/json; charset=utf-8", "application/vnd.api+json"):
        response = client.post("/api/calls/hangup", data='{"call_uuid": "x"}', content_type=content_type,
                                headers=headers(key_a))
        assert (response.status_code, response.json) == (404, {"error": "Call not found"}), content_type


# -- error shapes --------------------------------------------------------------------------


@pytest.fixture
def raising_client(gw):
    """Routes that fail with a given status (or raise, for 500) under each surface's prefix."""

    def raiser(code):
        if code == 500:
            raise RuntimeError("secret detail that must not leak")
        fail(code, f"failed with {code}")

    for prefix in ("/api", "/v1", "/api/public/v1", "/other"):
        gw.app.add_url_rule(f"{prefix}/_raise/<int:code>", f"raise{prefix}", raiser)
    return gw.app.test_client()


def test_each_surface_renders_its_shape(raising_client, caplog):
    for code in (400, 401, 402, 403, 404, 405, 409, 413, 415, 422, 429, 500, 503):
        message = "Internal server error" if code == 500 else f"failed with {code}"
        for prefix in ("/api", "/v1", "/other"):
            with caplog.at_level(logging.ERROR, logger="gateway.api.errors"):
                response = raising_client.get(f"{prefix}/_raise/{code}")
            assert response.status_code == code
            assert response.mimetype == "application/json"
            assert response.json == {"error": message}, (prefix, code)
        envelope = raising_client.get(f"/api/public/v1/_raise/{code}")  # texts: tests/test_public_*
        assert envelope.status_code == code
        assert (envelope.json["status"], envelope.json["code"]) == ("error", code)
        if code == 500:
            assert "secret detail that must not leak" not in envelope.get_data(as_text=True)
            assert "secret detail that must not leak" in caplog.text  # logged with its traceback


def test_routing_errors_in_each_shape(client):
    assert (client.get("/api/nope").status_code, client.get("/api/nope").json) == (404, {"error": "Not found"})
    assert client.get("/v1/nope").json == {"error": "Not found"}
    assert client.get("/api/public/v1/nope").json["status"] == "error"
    response = client.delete("/api/calls")
    assert (response.status_code, response.json) == (405, {"error": "Method not allowed"})
    assert "POST" in response.headers["Allow"]
    assert client.put("/v1/agents").status_code == 405
    assert client.post("/api/calls/5f3c8b2a-1d4e-4a9c-9e7b-2c6f0a1b3d8e").status_code == 405


def test_renderer_hook_picks_the_longest_prefix(monkeypatch):
    monkeypatch.setattr(errors, "RENDERERS", dict(errors.RENDERERS))
    errors.register_renderer("/api/public/v1/", lambda status, message: {"custom": message})
    assert errors.renderer_for("/api/public/v1/calls")(400, "x") == {"custom": "x"}
    assert errors.renderer_for("/api/public/v1")(400, "x") == {"custom": "x"}
    assert errors.renderer_for("/api/publicity")(400, "x") == {"error": "x"}
    assert errors.renderer_for("/v10/x")(400, "x") == {"error": "x"}


def test_a_view_that_breaks_is_a_500_in_shape(client, key_a, monkeypatch, caplog):
    import gateway.api.agents.agents as agents_view

    monkeypatch.setattr(agents_view, "Agent", None)
    with caplog.at_level(logging.ERROR):
        response = client.get("/v1/agents", headers=headers(key_a))
    assert (response.status_code, response.json) == (500, {"error": "Internal server error"})
    assert "unhandled error in GET /v1/agents" in caplog.text


# -- OpenAPI, docs, health, connections ----------------------------------------------------


def test_openapi_document_pins_the_surfaces(client):
    spec = client.get("/openapi.json").json
    assert spec["openapi"].startswith("3.")
    paths = {path: sorted(op for op in ops if op != "parameters") for path, ops in spec["paths"].items()
             if not path.startswith(("/api/public/v1", "/api/agent-api/voice"))}  # those pin their own paths
    assert paths == {
        "/api/calls": ["post"],
        "/api/calls/hangup": ["post"],
        "/api/calls/transfer": ["post"],
        "/api/calls/redirect": ["post"],
        "/api/calls/{call_uuid}": ["get"],
        "/v1/calls": ["post"],
        "/v1/calls/{call_id}": ["get"],
        "/v1/agents": ["get"],
        "/v1/webhooks/call-completed": ["post"],
    }
    assert spec["components"]["securitySchemes"]["ApiKeyAuth"] == {"type": "apiKey", "in": "header",
                                                                   "name": "X-API-KEY"}
    assert spec["components"]["schemas"]["Error"]["required"] == ["error"]
    place = spec["paths"]["/v1/calls"]["post"]["responses"]
    assert {"200", "400", "401", "402", "403", "404", "413", "415", "429", "503"} <= set(place)
    assert spec["components"]["schemas"]["PlaceCall"]["additionalProperties"] is False
    assert client.get("/docs").status_code == 200


def test_healthz_is_unauthenticated(client):
    response = client.get("/healthz")
    assert response.status_code == 200 and response.json["status"] == "ok"


def test_each_request_gives_its_connection_back(client, gw, key_a, account_a):
    make_agent(account_a)
    assert client.get("/v1/agents", headers=headers(key_a)).status_code == 200
    in_use = len(gw.db._in_use) if isinstance(gw.db, PooledDatabase) else None  # the controller's own
    for _ in range(3):
        assert client.get("/v1/agents", headers=headers(key_a)).status_code == 200
        assert client.get("/v1/calls/nope", headers=headers(key_a)).status_code == 404
        assert client.post("/api/calls", data="x", content_type="text/plain",
                           headers=headers(key_a)).status_code == 415
        assert gw.db.is_closed()
        if in_use is not None:
            assert len(gw.db._in_use) == in_use


def test_validation_messages_are_flattened():
    messages = {"json": {"headers": ["Unknown field."], "custom_args": {"x": {"value": ["Bad."]}},
                         "_schema": ["Whole body."]}}
    assert errors.flatten_messages(messages) == ["headers: Unknown field.", "custom_args.x.value: Bad.",
                                                 "Whole body."]


def test_an_exhausted_database_pool_is_shed_with_503_and_retry_after(database_url, sim, gw, account_a, key_a):
    """Every pooled connection is taken (bots, a burst): a request waits the pool's
    ``timeout`` for one, then gets 503 + Retry-After in its surface's shape, not a 500."""
    if not database_url.startswith("postgresql"):
        pytest.skip("a connection pool is PostgreSQL's")
    # One gateway per process: the models' database is the process's.  The fixture's
    # gateway made the account; with it running, its workers would use this test's small
    # pool (and hold its connections when it closes).
    gw.stop()
    import gevent
    from gevent.event import Event

    from api_support import _gateway
    from gateway.config import NodeConfig

    node = NodeConfig(f"127.0.0.1:{sim.port}", "127.0.0.1", sim.port, "ClueCon")
    small = _gateway(f"{database_url}?max_connections=8&timeout=1", (node,))
    release, holders = Event(), []
    try:
        client = small.app.test_client()
        assert client.get("/v1/agents", headers=headers(key_a)).status_code == 200

        def hold():
            small.db.connect()
            try:
                release.wait()
            finally:
                small.db.close()

        while len(small.db._in_use) < 8:
            holders.append(gevent.spawn(hold))
            gevent.sleep(0)
        for path in ("/v1/agents", "/api/calls/5f3c8b2a-1d4e-4a9c-9e7b-2c6f0a1b3d8e"):
            response = client.get(path, headers=headers(key_a))
            assert response.status_code == 503, response.get_data(as_text=True)
            assert response.headers["Retry-After"] == "1"
            assert response.get_json() == {"error": "The service is busy; retry shortly"}
        response = client.get("/api/public/v1/calls", headers=bearer(key_a))
        assert response.status_code == 503 and response.headers["Retry-After"] == "1"
        release.set()
        gevent.joinall(holders, timeout=5)
        assert client.get("/v1/agents", headers=headers(key_a)).status_code == 200
    finally:
        release.set()
        small.stop()

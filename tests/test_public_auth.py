"""``/api/public/v1``: the contract's auth table, where credentials may come from, scopes,
the envelope on every answer, ``reference_id`` echo, and the per-account rate limit
(shared by several apps and several processes on one database); SQLite and PostgreSQL."""
from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import time

from test_public_support import *  # noqa: F401,F403 -- fixtures
from test_public_support import BASE, auth
from gateway.api import create_app
from gateway.api import ratelimit
from gateway.auth.keys import create_key, revoke_key
from gateway.models import Account, Agent, Call, RateLimitWindow

MISSING = "Missing API key. Send your publishable key in the x-api-key header."
INVALID = "Invalid API credentials."
NOT_ACTIVE = "This account is not active. Please contact support."
NOT_ENABLED = "The API is not enabled for this account. Please contact support."

# Every operation, with a body that would pass validation if it were authenticated.
ENDPOINTS = [
    ("post", "/calls", {"type": "audio_blast", "number": "9812345678", "audio_id": 1}),
    ("get", "/calls", None),
    ("get", "/calls/run_1", None),
    ("get", "/calls/run_1/recording", None),
    ("post", "/otp/send", {"number": "9812345678"}),
    ("post", "/otp/verify", {"request_id": "5f3c8b2a-1d4e-4a9c-9e7b-2c6f0a1b3d8e", "code": "1234"}),
    ("get", "/campaigns", None),
    ("post", "/campaigns/57/trigger", {"number": "9812345678"}),
    ("get", "/account", None),
]


def call(client, method, path, body=None, headers=None, **kwargs):
    if method == "post":
        kwargs["json"] = dict(body or {}, reference_id="ref-1")
    else:
        path = f"{path}?reference_id=ref-1"
    return getattr(client, method)(BASE + path, headers=headers or {}, **kwargs)


def error(code, details, **extra):
    return {"status": "error", "code": code, "unique_id": None, "reference_id": "ref-1", "details": details,
            **extra}


def test_the_five_auth_situations_on_every_endpoint(client, india, pair):
    api_key_id, secret = pair
    revoked_key, revoked_secret = create_key(india)
    revoke_key(revoked_key)
    cases = [
        ({}, 401, MISSING),
        ({"x-api-secret": secret}, 401, MISSING),
        ({"x-api-key": "pk_live_doesnotexist", "x-api-secret": secret}, 401, INVALID),
        ({"x-api-key": api_key_id, "x-api-secret": "sk_live_wrong"}, 403, INVALID),
        ({"x-api-key": api_key_id}, 403, INVALID),  # known key, secret missing
        ({"x-api-key": revoked_key.publishable_id, "x-api-secret": revoked_secret}, 401, INVALID),
    ]
    for method, path, body in ENDPOINTS:
        extra = {"verified": False} if path == "/otp/verify" else {}
        for headers, code, details in cases:
            response = call(client, method, path, body, headers)
            assert (response.status_code, response.json) == (code, error(code, details, **extra)), (path, headers)
            assert "RateLimit-Limit" not in response.headers  # no account is known: nothing counted
    Account.update(status="suspended").where(Account.id == india.id).execute()
    for method, path, body in ENDPOINTS:
        extra = {"verified": False} if path == "/otp/verify" else {}
        response = call(client, method, path, body, auth(pair))
        assert (response.status_code, response.json) == (403, error(403, NOT_ACTIVE, **extra)), path
        # The account's state is told only to a caller who proved the secret.
        wrong = call(client, method, path, body, {"x-api-key": api_key_id, "x-api-secret": "sk_live_x"})
        assert (wrong.status_code, wrong.json["details"]) == (403, INVALID)
    Account.update(status="active", api_enabled=False).where(Account.id == india.id).execute()
    for method, path, body in ENDPOINTS:
        extra = {"verified": False} if path == "/otp/verify" else {}
        response = call(client, method, path, body, auth(pair))
        assert (response.status_code, response.json) == (403, error(403, NOT_ENABLED, **extra)), path
    assert Call.select().count() == 0


def test_credentials_from_headers_basic_or_body_and_which_wins(client, india, pair):
    api_key_id, secret = pair
    basic = "Basic " + base64.b64encode(f"{api_key_id}:{secret}".encode()).decode()
    wrong_basic = "Basic " + base64.b64encode(f"{api_key_id}:sk_live_wrong".encode()).decode()
    ok = [
        ({"headers": auth(pair)}, "headers"),
        ({"headers": {"Authorization": basic}}, "basic (curl -u)"),
        ({"headers": {"x-api-key": api_key_id}, "json": {"secret": secret}}, "secret in the body"),
        ({"headers": auth(pair), "json": {"secret": "sk_live_wrong"}}, "header beats body"),
        ({"headers": {"x-api-key": api_key_id, "Authorization": wrong_basic, "x-api-secret": secret}},
         "x-api-key + x-api-secret beat Basic"),
        ({"headers": {"X-Api-Key": api_key_id, "X-API-SECRET": secret}}, "header names are case-insensitive"),
    ]
    for kwargs, label in ok:
        # verify answers 400 "Verification failed." once authenticated (no such request)
        response = client.post(f"{BASE}/otp/verify", **{"json": {}, **kwargs})
        assert response.status_code == 400, (label, response.json)
        assert response.json["details"] == "A code and either request_id or number are required.", label
    refused = [
        ({"headers": {"x-api-key": api_key_id, "x-api-secret": "sk_live_wrong"}, "json": {"secret": secret}},
         "a wrong header secret is not rescued by the body"),
        ({"headers": {"Authorization": wrong_basic}}, "wrong Basic password"),
        ({"headers": {"x-api-key": api_key_id}, "json": {"secret": 12345}}, "a secret that is not a string"),
    ]
    for kwargs, label in refused:
        response = client.post(f"{BASE}/otp/verify", **{"json": {}, **kwargs})
        assert (response.status_code, response.json["details"]) == (403, INVALID), label
    # GET with Basic, as the contract's curl -u example does.
    assert client.get(f"{BASE}/account", headers={"Authorization": basic}).status_code == 200


def test_scopes_and_agent_keys(client, india, gw):
    key, secret = create_key(india, scopes=["calls:read"])
    headers = {"x-api-key": key.publishable_id, "x-api-secret": secret}
    assert client.get(f"{BASE}/calls", headers=headers).status_code == 200
    response = client.get(f"{BASE}/account", headers=headers)
    assert (response.status_code, response.json["details"]) == (403, "This API key does not have the account:read scope.")
    response = client.post(f"{BASE}/calls", json={"type": "otp", "number": "9812345678"}, headers=headers)
    assert (response.status_code, response.json["details"]) == (403, "This API key does not have the calls:write scope.")
    agent = Agent.create(account=india, key="akylai", name="Akylai", driver="websocket", driver_ref="wss://a.example/x")
    agent_key, agent_secret = create_key(india, owner_agent=agent)
    response = client.get(f"{BASE}/calls", headers={"x-api-key": agent_key.publishable_id, "x-api-secret": agent_secret})
    assert (response.status_code, response.json["details"]) == (
        403, "This API key belongs to a single agent and cannot be used with this API.")


def test_every_answer_is_the_envelope_and_echoes_reference_id(client, india, pair):
    ref = "order-\x0099\n213\x7f" + "x" * 200
    echoed = ("order-99213" + "x" * 200)[:120]
    unknown = client.get(f"{BASE}/nowhere", headers=auth(pair))
    assert unknown.status_code == 404
    assert unknown.json == {"status": "error", "code": 404, "unique_id": None, "reference_id": None,
                            "details": "Not found."}
    wrong_method = client.delete(f"{BASE}/account", headers=auth(pair))
    assert (wrong_method.status_code, wrong_method.json["status"], wrong_method.json["details"]) == (
        405, "error", "Method not allowed.")
    not_json = client.post(f"{BASE}/otp/send", data="number=9812345678", headers=auth(pair))
    assert (not_json.status_code, not_json.json["details"]) == (400, "The request body must be a JSON object.")
    array = client.post(f"{BASE}/otp/send", json=[1, 2], headers=auth(pair))
    assert (array.status_code, array.json["details"]) == (400, "The request body must be a JSON object.")
    # Form-labelled JSON (curl -d without -H) is read as JSON.
    labelled = client.post(f"{BASE}/otp/verify", data=json.dumps({"reference_id": ref}),
                           content_type="application/x-www-form-urlencoded", headers=auth(pair))
    assert labelled.json["reference_id"] == echoed
    bad = client.post(f"{BASE}/calls", json={"type": "fax", "number": "9812345678", "reference_id": ref},
                      headers=auth(pair))
    assert bad.json == {"status": "error", "code": 400, "unique_id": None, "reference_id": echoed,
                        "details": "A valid type is required: audio_blast, press1 or otp."}
    numeric = client.post(f"{BASE}/otp/verify", json={"reference_id": 42}, headers=auth(pair))
    assert numeric.json["reference_id"] == "42"
    queried = client.get(f"{BASE}/calls", query_string={"reference_id": "lead-1\x01"}, headers=auth(pair))
    assert queried.json["reference_id"] == "lead-1" and queried.json["status"] == "success"


def test_rate_limit_per_account_with_headers(client, india, other, pair, other_pair, monkeypatch):
    monkeypatch.setattr(ratelimit, "clock", lambda: 1_800_000_015.2)  # 15.2 s into a minute
    Account.update(rate_limit_per_minute=3).where(Account.id == india.id).execute()
    seen = []
    for _ in range(3):
        response = client.get(f"{BASE}/campaigns", headers=auth(pair))
        assert response.status_code == 200
        seen.append(response.headers["RateLimit-Remaining"])
        assert (response.headers["RateLimit-Limit"], response.headers["RateLimit-Reset"]) == ("3", "45")
    assert seen == ["2", "1", "0"]
    limited = client.get(f"{BASE}/calls/run_1", headers=auth(pair))
    assert limited.status_code == 429
    assert limited.json == {"status": "error", "code": 429, "unique_id": None, "reference_id": None,
                            "details": "Too many requests. Please slow down and retry shortly."}
    assert (limited.headers["RateLimit-Limit"], limited.headers["RateLimit-Remaining"],
            limited.headers["RateLimit-Reset"], limited.headers["Retry-After"]) == ("3", "0", "45", "45")
    # Another account is not throttled by this one; its errors carry its own headers.
    other_answer = client.get(f"{BASE}/calls/run_1", headers=auth(other_pair))
    assert other_answer.status_code == 404 and other_answer.headers["RateLimit-Limit"] == "100000"
    assert other_answer.headers["RateLimit-Remaining"] == "99999"
    # The next window starts afresh; the old window's row is deleted.
    monkeypatch.setattr(ratelimit, "clock", lambda: 1_800_000_060.0)
    assert client.get(f"{BASE}/campaigns", headers=auth(pair)).headers["RateLimit-Remaining"] == "2"
    assert [w.window_start for w in RateLimitWindow.select().where(RateLimitWindow.account == india.id)] == [
        1_800_000_060]
    # 0: no limit, no headers.
    Account.update(rate_limit_per_minute=0).where(Account.id == india.id).execute()
    assert "RateLimit-Limit" not in client.get(f"{BASE}/campaigns", headers=auth(pair)).headers


def test_rate_limit_is_shared_by_two_apps_on_one_database(gw, india, pair, monkeypatch):
    monkeypatch.setattr(ratelimit, "clock", lambda: 1_800_000_001.0)
    Account.update(rate_limit_per_minute=5).where(Account.id == india.id).execute()
    first, second = gw.app.test_client(), create_app(gw).test_client()
    codes = [(first if i % 2 else second).get(f"{BASE}/account", headers=auth(pair)).status_code for i in range(8)]
    assert codes == [200] * 5 + [429] * 3


_WORKER = r"""
import json, sys, time
from gevent import monkey
monkey.patch_all()
from gateway.api import ratelimit
ratelimit.clock = lambda: 1_800_000_001.0
from gateway.config import HttpAddress, MediaSettings, NodeConfig, Settings
from gateway.runtime import Gateway
url, pk, sk, count, start = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), float(sys.argv[5])
settings = Settings(database_url=url, http=HttpAddress("127.0.0.1", 0), media=MediaSettings(enabled=False),
                    freeswitch_nodes=(NodeConfig("none:1", "127.0.0.1", 1, "x"),))
client = Gateway(settings).app.test_client()
time.sleep(max(0.0, start - time.time()))
codes = [client.get("/api/public/v1/account", headers={"x-api-key": pk, "x-api-secret": sk}).status_code
         for _ in range(count)]
print(json.dumps(codes))
"""


def test_rate_limit_holds_across_processes(database_url, gw, india, pair):
    """Two server processes on one database admit exactly the limit between them."""
    Account.update(rate_limit_per_minute=50).where(Account.id == india.id).execute()
    env = {**os.environ, "PYTHONPATH": os.getcwd()}
    start = time.time() + 3.0
    workers = [subprocess.Popen([sys.executable, "-c", _WORKER, database_url, pair[0], pair[1], "40", str(start)],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
               for _ in range(2)]
    results = []
    for worker in workers:
        out, err = worker.communicate(timeout=60)
        assert worker.returncode == 0, err[-2000:]
        results.append(json.loads(out.strip().splitlines()[-1]))
    codes = results[0] + results[1]
    assert codes.count(200) == 50 and codes.count(429) == 30
    assert RateLimitWindow.get(RateLimitWindow.account == india.id).hits == 80

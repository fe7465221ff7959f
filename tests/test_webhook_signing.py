"""Signing (every scheme) and webhook URLs; no database, no network beyond 127.0.0.1."""
import hashlib
import hmac
import json
import socket

import pytest

from gateway.webhooks import signing, urls
from gateway.webhooks.urls import UrlRefused
from webhook_support import receiver, verify_raw_body, verify_signature  # noqa: F401

SECRET = "whsec_test_current"
PREVIOUS = "whsec_test_previous"


# -- canonical JSON and the sha256= scheme ------------------------------------------------------


def test_canonical_json_is_the_contracts_serialisation():
    payload = {"b": 1, "a": {"z": "é", "y": [1, 2]}, "c": None}
    assert signing.canonical_json(payload) == '{"a":{"y":[1,2],"z":"é"},"b":1,"c":null}'.encode()
    assert signing.canonical_json(payload) == json.dumps(
        payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def test_sign_is_hmac_sha256_of_the_body():
    body = b'{"a":1}'
    expected = hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    assert signing.sign(SECRET, body) == "sha256=" + expected


@pytest.mark.parametrize("payload", [
    {"event_type": "call.answered", "call_uuid": "u", "timestamp": "2026-02-09T14:30:00Z"},
    {"text": "Привет, नमस्ते, 你好 \u2028 \"quoted\" \\ back", "n": 1.5, "nested": {"b": [True, None], "a": 0}},
])
def test_dict_based_and_raw_body_verifiers_accept_the_same_bytes(payload):
    body = signing.canonical_json(payload)
    header = signing.sign(SECRET, body)
    assert verify_signature(SECRET, json.loads(body), header)  # the contract's example code
    assert verify_raw_body(body, header, SECRET)  # the Express example, in Python
    assert signing.verify(SECRET, body, header)
    assert signing.verify_payload(SECRET, json.loads(body), header)


def test_verify_refuses_tampering_wrong_secret_and_malformed_headers():
    body = signing.canonical_json({"a": 1})
    header = signing.sign(SECRET, body)
    assert not signing.verify(SECRET, b'{"a":2}', header)
    assert not signing.verify("whsec_other", body, header)
    assert not signing.verify(SECRET, body, header.replace("sha256=", "sha1="))
    assert not signing.verify(SECRET, body, "")
    assert not signing.verify(SECRET, body, None)
    assert signing.verify([PREVIOUS, SECRET], body, header)  # any valid secret


# -- the timestamped scheme ----------------------------------------------------------------------


def test_timestamped_signature_format_and_value():
    body = b'{"a":1}'
    header = signing.timestamped_signature(SECRET, body, timestamp=1700000000)
    expected = hmac.new(SECRET.encode(), b"1700000000." + body, hashlib.sha256).hexdigest()
    assert header == f"t=1700000000,v1={expected}"


def test_timestamped_verify_tolerance_replay_and_future():
    body = b'{"a":1}'
    header = signing.timestamped_signature(SECRET, body, timestamp=1_700_000_000)
    assert signing.verify_timestamped(SECRET, body, header, now=1_700_000_000)
    assert signing.verify_timestamped(SECRET, body, header, now=1_700_000_300)
    assert not signing.verify_timestamped(SECRET, body, header, now=1_700_000_301)  # replayed later
    assert not signing.verify_timestamped(SECRET, body, header, now=1_699_999_000)  # from the future
    assert not signing.verify_timestamped(SECRET, body + b" ", header, now=1_700_000_000)  # tampered
    # Moving the time stamp breaks the signature: it covers t.
    forged = header.replace("t=1700000000", "t=1700000500")
    assert not signing.verify_timestamped(SECRET, body, forged, now=1_700_000_500)


def test_timestamped_carries_one_signature_per_valid_secret_during_rotation():
    body = b"{}"
    header = signing.timestamped_signature([SECRET, PREVIOUS], body, timestamp=1_700_000_000)
    t, signatures = signing.parse_timestamped(header)
    assert t == 1_700_000_000 and len(signatures) == 2
    # A receiver still on the previous secret keeps verifying; so does one on the new one.
    assert signing.verify_timestamped(PREVIOUS, body, header, now=t)
    assert signing.verify_timestamped(SECRET, body, header, now=t)
    assert not signing.verify_timestamped("whsec_other", body, header, now=t)


@pytest.mark.parametrize("header", ["", "v1=abc", "t=abc,v1=abc", "t=1,t=2,v1=abc", "t=1700000000", "garbage"])
def test_timestamped_verify_refuses_malformed_headers(header):
    assert not signing.verify_timestamped(SECRET, b"{}", header, now=1_700_000_000)


def test_documented_receiver_check_in_the_module_docstring_works():
    """The verifier printed in signing's docstring for new integrations, run as is."""
    source = signing.__doc__.split("Receiver check for new integrations (Python)::", 1)[1]
    source = source.split("Secrets are per account", 1)[0]
    code = "\n".join(line[4:] for line in source.splitlines())
    namespace = {}
    exec(compile(code, "docstring", "exec"), namespace)
    verify = namespace["verify"]
    body = signing.canonical_json({"x": 1})
    header = signing.timestamped_signature([SECRET, PREVIOUS], body)
    assert verify(SECRET, body, header)
    assert verify(PREVIOUS, body, header)
    assert not verify(SECRET, body + b"x", header)
    old = signing.timestamped_signature(SECRET, body, timestamp=1_000_000_000)
    assert not verify(SECRET, body, old)


# -- webhook URLs (the address policy itself: tests/test_net_policy.py) -----------------------------


@pytest.mark.parametrize("url, message", [
    ("ftp://example.com/x", "expected http"), ("file:///etc/passwd", "expected http"),
    ("http://", "expected http"), ("", "empty"), ("http://exa mple.com:99999/", "not a valid URL"),
])
def test_check_url_refuses_bad_urls(url, message):
    with pytest.raises(UrlRefused, match=message):
        urls.check_url(url)


def test_check_url_refuses_hosts_resolving_to_internal_addresses():
    with pytest.raises(UrlRefused, match=r"127\.0\.0\.1, a loopback address; refused"):
        urls.check_url("http://127.0.0.1:8080/hook")
    with pytest.raises(UrlRefused, match="a loopback address"):
        urls.check_url("http://localhost/hook")
    with pytest.raises(UrlRefused, match="a link-local address"):
        urls.check_url("http://169.254.169.254/latest/meta-data/")
    with pytest.raises(UrlRefused, match="a loopback address"):
        urls.check_url("http://[::1]:8080/hook")
    # Without DNS only literal addresses can be judged.
    with pytest.raises(UrlRefused, match="a private address"):
        urls.check_url("https://10.0.0.7/x", resolve_host=False)
    assert urls.check_url("https://hooks.example.invalid/x", resolve_host=False) == "https://hooks.example.invalid/x"
    with pytest.raises(UrlRefused, match="does not resolve"):
        urls.check_url("https://hooks.example.invalid/x")


def test_check_url_with_the_allowlist(loopback_allowed):
    assert urls.check_url(" http://127.0.0.1:8080/hook ") == "http://127.0.0.1:8080/hook"
    with pytest.raises(UrlRefused):
        urls.check_url("http://10.0.0.1/hook")


def test_guarded_session_refuses_at_connect_time(receiver):
    """Delivery re-checks the address it connects to, whatever was checked before."""
    session = urls.guarded_session()
    with pytest.raises(UrlRefused, match="loopback"):
        session.post(receiver.url(), data=b"{}", timeout=2)
    assert receiver.requests == []
    with urls.policy.allowing("127.0.0.1"):
        assert session.post(receiver.url(), data=b"{}", timeout=2).status_code == 200
    assert len(receiver.requests) == 1


def test_guarded_session_checks_the_address_dns_gives_at_connect_time(receiver, monkeypatch):
    """DNS rebinding: the name resolved to a public address when the URL was checked, and
    resolves to 127.0.0.1 when the request is made; the connection is refused."""
    real = socket.getaddrinfo
    answers = iter(["93.184.215.14", "127.0.0.1"])

    def rebinding(host, port, *args, **kwargs):
        if host == "rebind.test":
            ip = next(answers)
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (ip, port))]
        return real(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", rebinding)
    url = f"http://rebind.test:{receiver.port}/hook"
    assert urls.check_url(url) == url  # first answer: public
    with pytest.raises(UrlRefused, match="rebind.test resolves to 127.0.0.1"):
        urls.guarded_session().post(url, data=b"{}", timeout=2)
    assert receiver.requests == []


def test_guarded_session_ignores_proxy_environment(receiver, monkeypatch, loopback_allowed):
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9/")  # nothing listens there
    assert urls.guarded_session().post(receiver.url(), data=b"{}", timeout=2).status_code == 200

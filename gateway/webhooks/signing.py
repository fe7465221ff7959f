"""Webhook signing: every scheme the gateway uses, in one place.

Every webhook body is *canonical JSON*: ``json.dumps(payload, sort_keys=True,
separators=(",", ":"), ensure_ascii=False)`` encoded as UTF-8, exactly the
serialisation the call-control contract prescribes. The bytes that go on the wire are
those bytes, and every signature is an HMAC-SHA256 over them. Hence a receiver may
verify in either way and both succeed:

* re-serialise the parsed JSON as the contract's ``verify_signature`` example does
  (it reproduces our bytes, because they are canonical already), or
* HMAC the raw request body, as the agent-call contract's Express example does.

Headers
-------
``X-Signature: sha256=<hex>``
    HMAC-SHA256(secret, body), hex. The call-control contract's header; the public
    calling API uses it too. The agent-call surface (``/v1``) sends the same value
    under its own name (``X-Voicegw-Signature``); ``gateway.webhooks.profiles`` chooses the
    headers per subscription.
``X-Webhook-Signature: t=<unix seconds>,v1=<hex>[,v1=<hex>]``
    For new integrations: HMAC-SHA256(secret, ``f"{t}.".encode() + body``), computed at
    each attempt. Binding the time into the signature lets the receiver refuse a
    replayed delivery: reject it when ``|now - t|`` exceeds a tolerance (300 s).
    During a secret rotation's overlap window there is one ``v1`` per valid secret
    (the current one first), so a receiver still configured with the previous secret
    keeps verifying. Unknown schemes (anything but ``t`` and ``v1``) are ignored.
``X-Webhook-Id: evt_…``
    The delivery's event id, the same on every retry and replay: dedupe on it.

Receiver check for new integrations (Python)::

    import hashlib, hmac, time

    def verify(secret: str, raw_body: bytes, header: str, tolerance: int = 300) -> bool:
        items = [part.split("=", 1) for part in header.split(",") if "=" in part]
        stamps = [v for k, v in items if k.strip() == "t"]
        signatures = [v.strip() for k, v in items if k.strip() == "v1"]
        if len(stamps) != 1 or not stamps[0].strip().isdigit() or not signatures:
            return False
        t = int(stamps[0])
        if abs(time.time() - t) > tolerance:
            return False  # too old (a replay) or from the future
        expected = hmac.new(secret.encode(), f"{t}.".encode() + raw_body, hashlib.sha256).hexdigest()
        return any(hmac.compare_digest(expected, s) for s in signatures)

Secrets are per account (``Account.webhook_secret``), rotated with ``voicegw
webhook-secret rotate``; ``Account.webhook_secrets(now)`` lists the valid ones, the
current first. We sign with the current one; the verifiers here (used by our own
ingest endpoint) accept any valid one.
"""
from __future__ import annotations

import hashlib
import hmac
import json
import time
from typing import Iterable

SIGNATURE_HEADER = "X-Signature"
TIMESTAMPED_HEADER = "X-Webhook-Signature"
EVENT_ID_HEADER = "X-Webhook-Id"
SIGNATURE_PREFIX = "sha256="
#: How far (seconds) a timestamped signature may be from the receiver's clock.
DEFAULT_TOLERANCE = 300


def canonical_json(payload) -> bytes:
    """The exact bytes the gateway sends for ``payload`` (sorted keys, no spaces, UTF-8)."""
    return json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def _hmac_hex(secret: str, message: bytes) -> str:
    return hmac.new(secret.encode("utf-8"), message, hashlib.sha256).hexdigest()


def _secrets(secrets: str | Iterable[str]) -> list[str]:
    values = [secrets] if isinstance(secrets, str) else [s for s in secrets if s]
    if not values:
        raise ValueError("no signing secret")
    return values


def sign(secret: str, body: bytes) -> str:
    """``sha256=<hex HMAC-SHA256(secret, body)>``: the ``X-Signature`` value."""
    return SIGNATURE_PREFIX + _hmac_hex(secret, body)


def verify(secrets: str | Iterable[str], body: bytes, header: str | None) -> bool:
    """Whether ``header`` (``sha256=<hex>``) signs ``body`` with one of ``secrets``."""
    if not header or not header.startswith(SIGNATURE_PREFIX):
        return False
    received = header[len(SIGNATURE_PREFIX):].strip()
    ok = False
    for secret in _secrets(secrets):
        # No early exit: the time taken does not tell which secret matched.
        ok |= hmac.compare_digest(received, _hmac_hex(secret, body))
    return ok


def verify_payload(secrets: str | Iterable[str], payload, header: str | None) -> bool:
    """The call-control contract's check: re-serialise ``payload`` canonically, then verify."""
    return verify(secrets, canonical_json(payload), header)


def timestamped_signature(secrets: str | Iterable[str], body: bytes, timestamp: int | None = None) -> str:
    """``t=<unix>,v1=<hex>[,v1=<hex>…]``: one ``v1`` per secret, in the order given."""
    t = int(time.time()) if timestamp is None else int(timestamp)
    message = f"{t}.".encode("ascii") + body
    return ",".join([f"t={t}"] + [f"v1={_hmac_hex(secret, message)}" for secret in _secrets(secrets)])


def parse_timestamped(header: str) -> tuple[int | None, list[str]]:
    """``(t, [v1 signatures])`` from a timestamped header; ``t`` None if absent or malformed."""
    stamps, signatures = [], []
    for part in (header or "").split(","):
        key, sep, value = part.partition("=")
        if not sep:
            continue
        key, value = key.strip(), value.strip()
        if key == "t":
            stamps.append(value)
        elif key == "v1" and value:
            signatures.append(value)
    if len(stamps) != 1 or not stamps[0].isdigit():
        return None, signatures
    return int(stamps[0]), signatures


def verify_timestamped(
    secrets: str | Iterable[str],
    body: bytes,
    header: str | None,
    *,
    tolerance: int = DEFAULT_TOLERANCE,
    now: float | None = None,
) -> bool:
    """Whether ``header`` signs ``body`` with one of ``secrets``, at a time within
    ``tolerance`` seconds of ``now`` (either way: a replay is too old, a forged future
    stamp would stay valid too long)."""
    t, signatures = parse_timestamped(header or "")
    if t is None or not signatures:
        return False
    if abs((time.time() if now is None else now) - t) > tolerance:
        return False
    message = f"{t}.".encode("ascii") + body
    ok = False
    for secret in _secrets(secrets):
        expected = _hmac_hex(secret, message)
        for signature in signatures:
            ok |= hmac.compare_digest(expected, signature)
    return ok


def signature_headers(secrets: list[str], body: bytes, signature_header: str = SIGNATURE_HEADER,
                      timestamp: int | None = None) -> dict[str, str]:
    """The signature headers of one attempt: ``signature_header: sha256=…`` with the
    current secret (``secrets[0]``) and ``X-Webhook-Signature`` with every valid one."""
    return {
        signature_header: sign(secrets[0], body),
        TIMESTAMPED_HEADER: timestamped_signature(secrets, body, timestamp),
    }

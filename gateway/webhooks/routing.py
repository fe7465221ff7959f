"""The routing webhook (call-control contract): ask the customer where a call's media goes.

``request_route`` POSTs ``call.routing_request`` to the customer's ``webhook_url`` and
returns a :class:`RouteDecision`. The contract's rules:

* **3 seconds, strict.** One ``gevent.Timeout`` covers everything (DNS, connect, TLS,
  request, response), so a call is never held longer than that.
* **No retry.** Any failure (timeout, connection error, a non-2xx answer, a body that
  is not the contract's JSON, a URL the policy refuses) yields ``action="default"``
  with ``detail`` saying why; the caller then applies the number's or the account's
  default.
* Answers acted on: ``{"action": "connect", "socket_url": "wss://…", "timeout": 30}``
  (``timeout`` optional: a session limit in seconds) and
  ``{"action": "hangup", "reason": "business_hours_closed"}`` (``reason`` optional).
  ``socket_url`` may also name a native provider as the call-control API allows
  (``elevenlabs``, ``vapi``, ``elevenlabs&<agent id>``).

Headers: those of the account's ``api`` subscription's header profile
(``gateway.webhooks.profiles``). ``gateway``: ``Content-Type: application/json``,
``X-Call-UUID``, ``X-Signature: sha256=<hmac>``, ``User-Agent: VoiceAPI/1.0``, and the
timestamped ``X-Webhook-Signature``; ``contract``: the same without the last;
``standard-webhooks``: ``webhook-id`` (the ``request_id``), ``webhook-timestamp``,
``webhook-signature``.
"""
from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass

import gevent
import requests

from gateway.models.validators import check_media_target
from gateway.webhooks import events as ev
from gateway.webhooks import profiles
from gateway.webhooks.signing import canonical_json
from gateway.webhooks.urls import UrlRefused, guarded_session, split_url

logger = logging.getLogger(__name__)

ROUTING_TIMEOUT = 3.0
MAX_RESPONSE_BYTES = 64 * 1024
MAX_REASON_LENGTH = 255
MAX_SESSION_TIMEOUT = 24 * 3600

_session: requests.Session | None = None


def _shared_session() -> requests.Session:
    global _session
    if _session is None:
        _session = guarded_session(pool_maxsize=50)
    return _session


@dataclass(frozen=True)
class RouteDecision:
    action: str  # "connect" | "hangup" | "default"
    socket_url: str | None = None
    timeout: int | None = None  # optional session timeout (s) from the customer
    reason: str | None = None  # hangup reason
    detail: str = ""  # why "default" was chosen (timeout, 500, garbage, refused url…)


def _default(detail: str) -> RouteDecision:
    return RouteDecision("default", detail=detail)


def parse_answer(status: int, body: bytes) -> RouteDecision:
    """The decision a routing webhook's HTTP answer carries."""
    if not 200 <= status < 300:
        return _default(f"HTTP {status}")
    try:
        answer = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return _default("the answer is not JSON")
    if not isinstance(answer, dict):
        return _default("the answer is not a JSON object")
    action = answer.get("action")
    if action == "connect":
        socket_url = answer.get("socket_url")
        try:
            socket_url = check_media_target(socket_url, "socket_url")
        except ValueError as exc:
            return _default(f"connect: {exc}")
        timeout = answer.get("timeout")
        if timeout is not None:
            if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or timeout != int(timeout) \
                    or not 0 < timeout <= MAX_SESSION_TIMEOUT:
                return _default(f"connect: timeout {timeout!r} is not a whole number of seconds"
                                f" between 1 and {MAX_SESSION_TIMEOUT}")
            timeout = int(timeout)
        return RouteDecision("connect", socket_url=socket_url, timeout=timeout)
    if action == "hangup":
        reason = answer.get("reason")
        if reason is not None and not isinstance(reason, str):
            return _default("hangup: reason is not a string")
        return RouteDecision("hangup", reason=(reason or None) and reason[:MAX_REASON_LENGTH])
    return _default(f"unknown action {action!r}" if action is not None else "the answer has no action")


def request_route(*, url: str, secret: str, call_uuid: str, direction: str, caller_number: str,
                  destination_number: str, account_id, timeout: float = ROUTING_TIMEOUT,
                  header_profile: str = profiles.GATEWAY,
                  session: requests.Session | None = None) -> RouteDecision:
    """Ask ``url`` how to route the call, with the headers of ``header_profile``; never
    raises, never takes longer than ``timeout``."""
    payload = ev.routing_request(call_uuid=call_uuid, direction=direction, caller_number=caller_number,
                                 destination_number=destination_number, account_id=account_id)
    body = canonical_json(payload)
    headers = profiles.routing_headers(header_profile, call_uuid, payload["request_id"])
    headers.update(profiles.signature_headers(header_profile, ev.CONTROL, [secret], body, payload["request_id"]))
    session = session or _shared_session()
    started = time.monotonic()
    deadline = gevent.Timeout(timeout)
    deadline.start()
    try:
        split_url(url)  # a malformed URL is refused like a forbidden address
        response = session.post(url, data=body, headers=headers, allow_redirects=False,
                                timeout=(timeout, timeout), stream=True)
        try:
            answer = response.raw.read(MAX_RESPONSE_BYTES + 1, decode_content=True) or b""
            status = response.status_code
        finally:
            response.close()
        decision = (_default("the answer is larger than 64 KiB") if len(answer) > MAX_RESPONSE_BYTES
                    else parse_answer(status, answer))
    except gevent.Timeout as exc:
        if exc is not deadline:
            raise
        decision = _default(f"timeout: no answer within {timeout:g}s")
    except UrlRefused as exc:
        decision = _default(f"refused url: {exc}")
    except requests.RequestException as exc:
        decision = _default(f"request failed: {exc.__class__.__name__}")
    except Exception as exc:  # whatever happens, the call goes on with the default
        logger.exception("routing webhook for %s failed", call_uuid)
        decision = _default(f"error: {exc.__class__.__name__}")
    finally:
        deadline.close()
    elapsed_ms = int((time.monotonic() - started) * 1000)
    logger.info("routing %s > %s: %s %s (%d ms) %s", call_uuid, url, decision.action,
                decision.socket_url or decision.reason or "", elapsed_ms, decision.detail)
    return decision

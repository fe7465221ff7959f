"""``POST /v1/webhooks/call-completed``: a provider's final result for a call.

Body (agent-call contract, minimal)::

    {"event_type": "call.completed", "provider_call_id": "…", "status": "completed",
     "transcript": "agent: Hello\\nuser: Hi", "duration": 120}

``analysis`` (object) and ``recording_url`` (string) may be added. The request must be
signed with the webhook secret of the account that owns the call, the way the gateway
signs its own webhooks (``gateway.webhooks.signing``): either
``X-Webhook-Signature: t=<unix>,v1=<hex>`` (checked with a 300 s tolerance) or
``X-Signature: sha256=<hex>`` (also accepted under ``X-Voicegw-Signature``) over the
raw body, or over the canonical JSON of the body as the call-control contract's
verifier computes it. During a secret rotation's overlap the previous secret is
accepted too.

Answers (errors as ``{"error": "…"}``):

====  ==========================================================================
200   ``{"received": true, "call_id": "<uuid>", "duplicate": false}``; a repeated
      report for the same provider_call_id: the same with ``"duplicate": true``
      and nothing changed
400   ``Invalid JSON body`` / ``The body is nested too deeply`` (deeper than
      ``gateway.peer_json.MAX_DEPTH``) / ``The body must be a JSON object`` /
      ``The body contains a NUL character`` (or ``an unpaired surrogate``, see
      :func:`text_fault`) / a field's message
401   ``Invalid signature``
404   ``Call not found`` (no call has this provider_call_id)
413   the body is larger than 1 MiB
====  ==========================================================================

Register with ``app.register_blueprint(gateway.webhooks.ingest.blueprint)``.
"""
from __future__ import annotations

import logging

from flask import Blueprint, jsonify, request

from gateway import peer_json
from gateway.models.db import connection_scope
from gateway.webhooks.events import AGENTS_SIGNATURE_HEADER
from gateway.webhooks.provider import clean_completion, find_provider_call, record_completion
from gateway.webhooks.signing import (
    SIGNATURE_HEADER,
    TIMESTAMPED_HEADER,
    verify,
    verify_payload,
    verify_timestamped,
)

logger = logging.getLogger(__name__)

MAX_INGEST_BYTES = 1024 * 1024  # transcripts are long; the app's default limit is smaller

blueprint = Blueprint("webhook_ingest", __name__)


def _error(status: int, message: str):
    return jsonify({"error": message}), status


def signature_ok(secrets: list[str], raw: bytes, payload, headers) -> bool:
    """Whether the request is signed with one of ``secrets`` (see the module docstring)."""
    stamped = headers.get(TIMESTAMPED_HEADER)
    if stamped:
        return verify_timestamped(secrets, raw, stamped)
    for name in (SIGNATURE_HEADER, AGENTS_SIGNATURE_HEADER):
        header = headers.get(name)
        if header:
            return verify(secrets, raw, header) or verify_payload(secrets, payload, header)
    return False


def text_fault(value) -> str | None:
    """What makes a string of ``value`` (a key or a value, at any depth) unfit to keep,
    or None. PostgreSQL text cannot hold a NUL character, and an unpaired surrogate
    (JSON can spell one: ``"\\ud800"``) has no UTF-8 form: neither can be stored,
    looked up or serialised canonically."""
    stack = [value]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            stack.extend(node.keys())
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
        elif isinstance(node, str):
            if "\x00" in node:
                return "a NUL character"
            try:
                node.encode("utf-8")
            except UnicodeEncodeError:
                return "an unpaired surrogate"
    return None


@blueprint.post("/v1/webhooks/call-completed")
def call_completed():
    request.max_content_length = MAX_INGEST_BYTES
    raw = request.get_data(cache=True)
    try:
        payload = peer_json.loads(raw.decode("utf-8"))
    except peer_json.TooDeep:
        return _error(400, "The body is nested too deeply")
    except ValueError:  # UnicodeDecodeError included
        return _error(400, "Invalid JSON body")
    if not isinstance(payload, dict):
        return _error(400, "The body must be a JSON object")
    fault = text_fault(payload)
    if fault:
        return _error(400, f"The body contains {fault}")
    provider_call_id = payload.get("provider_call_id")
    if not isinstance(provider_call_id, str) or not provider_call_id.strip():
        return _error(400, "provider_call_id is required")
    with connection_scope():
        link = find_provider_call(provider_call_id.strip())
        if link is None:
            return _error(404, "Call not found")
        account = link.call.account
        if not signature_ok(account.webhook_secrets(), raw, payload, request.headers):
            logger.warning("call-completed for %s: invalid signature", provider_call_id)
            return _error(401, "Invalid signature")
        try:
            report = clean_completion(payload)
        except ValueError as exc:
            return _error(400, str(exc))
        try:
            call, duplicate = record_completion(report, payload)
        except LookupError:
            return _error(404, "Call not found")
    return jsonify({"received": True, "call_id": call.uuid, "duplicate": duplicate}), 200

"""Header profiles: the headers a webhook request carries, chosen per subscription.

The body is the same in every profile (canonical JSON, ``gateway.webhooks.signing``);
what changes is the headers that name the event and carry its signature, so that a
receiver's existing verifier works unchanged. Every signature is an HMAC-SHA256 keyed
with the UTF-8 bytes of the account's webhook secret.

``gateway`` (the default)
    Ours. Call control (``api``) and the public API: ``X-Signature: sha256=<hex>``,
    ``X-Webhook-Event``, ``X-Call-UUID``; the agent-call API (``v1``): the same signature
    as ``X-Voicegw-Signature`` and the event as ``X-Voicegw-Event``. Every surface adds
    ``X-Webhook-Id: evt_…`` and the timestamped ``X-Webhook-Signature: t=…,v1=…`` (one
    ``v1`` per valid secret during a rotation's overlap).
``contract``
    Exactly the headers the surface's contract lists, nothing else:

    * ``api`` (call-control-and-bot-media.txt): ``Content-Type: application/json``,
      ``X-Call-UUID``, ``X-Signature: sha256=<hex>``, ``User-Agent: VoiceAPI/1.0``; its
      ``verify_signature`` (re-serialise canonically, ``split("=")[1]``) succeeds;
    * ``v1`` (agent-calls-events.txt): ``Content-Type: application/json``,
      ``X-Vyora-Event``, ``X-Vyora-Signature: sha256=<hex HMAC of the raw body>``,
      ``User-Agent: Vyora-Webhooks/1.0``. The contracts' README lets us choose the
      product name, and the ``gateway`` profile does; but a header name is wire shape,
      and an integrator's verifier reads ``x-vyora-signature``, so this profile sends the
      contract's names verbatim;
    * ``public``: its contract names no webhook headers, so it has no such profile
      (:func:`check_profile` refuses it).
``standard-webhooks``
    The Standard Webhooks specification (standardwebhooks.com): ``webhook-id`` (the
    event's ``evt_…``, stable across retries), ``webhook-timestamp`` (Unix seconds of
    the attempt) and ``webhook-signature: v1,<base64 HMAC-SHA256 of
    "<id>.<timestamp>.<body>">``, space-separated, one per valid secret. The
    specification's libraries take the secret as ``whsec_<base64 of the key>``:
    :func:`standard_webhooks_secret` gives the account's secret in that form.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import time
from typing import Iterable

from gateway.domain import Surface
from gateway.webhooks import signing

GATEWAY, CONTRACT, STANDARD_WEBHOOKS = "gateway", "contract", "standard-webhooks"
PROFILES = (GATEWAY, CONTRACT, STANDARD_WEBHOOKS)

CONTROL, AGENTS = Surface.CONTROL.value, Surface.AGENTS.value

CONTENT_TYPE = "application/json"
CALL_UUID_HEADER = "X-Call-UUID"
EVENT_TYPE_HEADER = "X-Webhook-Event"
CONTROL_USER_AGENT = "VoiceAPI/1.0"
OUR_USER_AGENT = "Voicegw-Webhooks/1.0"
OUR_AGENTS_EVENT_HEADER = "X-Voicegw-Event"
OUR_AGENTS_SIGNATURE_HEADER = "X-Voicegw-Signature"
# agent-calls-events.txt, "Request headers"
EVENTS_CONTRACT_EVENT_HEADER = "X-Vyora-Event"
EVENTS_CONTRACT_SIGNATURE_HEADER = "X-Vyora-Signature"
EVENTS_CONTRACT_USER_AGENT = "Vyora-Webhooks/1.0"
# The Standard Webhooks headers (lower case, as the specification writes them).
WEBHOOK_ID, WEBHOOK_TIMESTAMP, WEBHOOK_SIGNATURE = "webhook-id", "webhook-timestamp", "webhook-signature"
STANDARD_SECRET_PREFIX = "whsec_"

#: Surfaces whose contract lists its webhook headers (so they have a ``contract`` profile).
CONTRACT_SURFACES = (CONTROL, AGENTS)


def check_profile(surface: str, profile: str) -> str:
    """``profile`` if the surface offers it, else ``ValueError`` saying what it offers."""
    if profile not in PROFILES:
        raise ValueError(f"header profile {profile!r} is invalid; expected one of {', '.join(PROFILES)}")
    if profile == CONTRACT and surface not in CONTRACT_SURFACES:
        raise ValueError(f"surface {surface}'s contract names no webhook headers, so it has no contract"
                         f" profile; expected {GATEWAY} or {STANDARD_WEBHOOKS}")
    return profile


def user_agent(surface: str) -> str:
    return CONTROL_USER_AGENT if surface == CONTROL else OUR_USER_AGENT


def _our_signature_header(surface: str) -> str:
    return OUR_AGENTS_SIGNATURE_HEADER if surface == AGENTS else signing.SIGNATURE_HEADER


def event_headers(profile: str, surface: str, event_type: str, event_id: str, call_uuid: str | None) -> dict:
    """The headers of an event that are the same at every attempt (no signature)."""
    headers = {"Content-Type": CONTENT_TYPE}
    if profile == CONTRACT:
        if surface == AGENTS:
            headers[EVENTS_CONTRACT_EVENT_HEADER] = event_type
            headers["User-Agent"] = EVENTS_CONTRACT_USER_AGENT
        else:
            headers[CALL_UUID_HEADER] = call_uuid
            headers["User-Agent"] = CONTROL_USER_AGENT
        return headers
    headers["User-Agent"] = user_agent(surface)
    if profile == STANDARD_WEBHOOKS:
        headers[WEBHOOK_ID] = event_id
        return headers
    headers[signing.EVENT_ID_HEADER] = event_id
    if surface == AGENTS:
        headers[OUR_AGENTS_EVENT_HEADER] = event_type
    else:
        headers[EVENT_TYPE_HEADER] = event_type
        if call_uuid:
            headers[CALL_UUID_HEADER] = call_uuid
    return headers


def routing_headers(profile: str, call_uuid: str, request_id: str) -> dict:
    """The routing webhook's headers besides its signature (the call-control contract's
    ``Content-Type``, ``X-Call-UUID``, ``User-Agent``; Standard Webhooks: its id is the
    request's ``request_id``)."""
    headers = {"Content-Type": CONTENT_TYPE, "User-Agent": CONTROL_USER_AGENT}
    if profile == STANDARD_WEBHOOKS:
        headers[WEBHOOK_ID] = request_id
    else:
        headers[CALL_UUID_HEADER] = call_uuid
    return headers


def signature_headers(profile: str, surface: str, secrets: list[str], body: bytes, message_id: str,
                      timestamp: int | None = None) -> dict:
    """The signature headers of one attempt, signed with ``secrets`` (the current first).
    ``message_id`` is the ``webhook-id`` a Standard Webhooks signature covers."""
    if not secrets:
        raise ValueError("no signing secret")
    if profile == CONTRACT:
        header = EVENTS_CONTRACT_SIGNATURE_HEADER if surface == AGENTS else signing.SIGNATURE_HEADER
        return {header: signing.sign(secrets[0], body)}
    if profile == STANDARD_WEBHOOKS:
        t = int(time.time()) if timestamp is None else int(timestamp)
        return {WEBHOOK_TIMESTAMP: str(t), WEBHOOK_SIGNATURE: standard_signature(secrets, message_id, t, body)}
    return signing.signature_headers(secrets, body, _our_signature_header(surface), timestamp)


def standard_signature(secrets: Iterable[str], message_id: str, timestamp: int, body: bytes) -> str:
    """``v1,<base64>`` for each secret, space-separated (the ``webhook-signature`` value)."""
    message = f"{message_id}.{timestamp}.".encode("utf-8") + body
    return " ".join("v1," + base64.b64encode(hmac.new(secret.encode("utf-8"), message, hashlib.sha256).digest())
                    .decode("ascii") for secret in secrets)


def standard_webhooks_secret(secret: str) -> str:
    """The account's secret as Standard Webhooks libraries take it: ``whsec_`` and the
    base64 of the key's bytes (the same key every profile signs with)."""
    return STANDARD_SECRET_PREFIX + base64.b64encode(secret.encode("utf-8")).decode("ascii")

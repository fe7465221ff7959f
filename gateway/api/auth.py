"""Who is calling: the authentication styles a surface declares.

A style's ``authenticate()`` reads the request's credentials and answers with whom it
proved to be (``.account`` among it), or stops the request in the surface's words;
``require_scope`` refuses a key without the view's scope. The three styles:

``SecretKey`` (``/api``, ``/v1``)
    The secret alone: ``X-API-KEY: sk_live_…`` or ``Authorization: Bearer sk_live_…``
    (``X-API-KEY`` wins when both are sent).

    ======================  ====  ==========================================================
    situation               code  error
    ======================  ====  ==========================================================
    no key sent             401   Missing API key: send it in the X-API-KEY header or as
                                  Authorization: Bearer
    unknown key             401   Invalid API key
    revoked key             403   This API key has been revoked
    suspended account       403   This account is suspended
    API disabled            403   API access is disabled for this account
    scope missing           403   This API key does not have the <scope> scope
    ======================  ====  ==========================================================

``KeyPair`` (``/api/public/v1``)
    The publishable key (``pk_live_…``) in ``x-api-key``, else Basic auth's user name; the
    secret (``sk_live_…``) in ``x-api-secret``, else Basic auth's password, else the
    ``secret`` field of the JSON body (a header always beats the body). The answers are
    the public contract's table:

    =========================================  ====  ======================================
    situation                                  HTTP  details
    =========================================  ====  ======================================
    no publishable key sent                    401   Missing API key. Send your publishable
                                                     key in the x-api-key header.
    unknown publishable key (or revoked key)   401   Invalid API credentials.
    known key, wrong or missing secret         403   Invalid API credentials.
    account is not active                      403   This account is not active. Please
                                                     contact support.
    API access not enabled for the account     403   The API is not enabled for this
                                                     account. Please contact support.
    =========================================  ====  ======================================

    Unknown key and wrong secret have the same words and cost the same work
    (``authenticate_pair`` hashes and compares in both cases); the account's state is only
    told to a caller who proved the secret.

``ProviderSignature`` (``POST /v1/webhooks/call-completed``)
    A provider's report, signed with the webhook secret of the account that owns the
    call it names (``gateway.webhooks.provider.signed_by``). The signature is checked
    before anything is said about the call: a report naming no known call is refused
    exactly as a badly signed one is, after the same work, so an unsigned request cannot
    tell whether a provider call id exists. The body is read here, since it names the
    call whose account signs it: 400 for one that is not a JSON object, is nested too
    deeply, holds text that cannot be stored, or names no ``provider_call_id``.

A style built with ``agent_keys=`` refuses a key that belongs to one agent with that
message (403), right after authenticating it: the surface is account-wide.
"""
from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass

from flask import request

from gateway import peer_json
from gateway.api import bodies
from gateway.api.errors import fail
from gateway.auth.keys import AuthFailure, AuthFailureReason, AuthResult, authenticate_pair, authenticate_secret, has_scope
from gateway.models import Account, ProviderCall
from gateway.models.db import connection_scope
from gateway.webhooks.provider import find_provider_call, signed_by, text_fault

logger = logging.getLogger(__name__)

API_KEY_HEADER = "X-API-KEY"


class SecretKey:
    """The secret alone (see the module docstring)."""

    scoped = True
    #: OpenAPI security schemes; operations use the document's default security.
    schemes = {
        "ApiKeyAuth": {"type": "apiKey", "in": "header", "name": API_KEY_HEADER},
        "BearerAuth": {"type": "http", "scheme": "bearer"},
    }
    security = None
    documented = ((401, "Missing or invalid API key"),
                  (403, "Key revoked, account suspended or API disabled, or scope missing"))
    failures = {
        AuthFailureReason.MISSING_CREDENTIALS: (
            401, f"Missing API key: send it in the {API_KEY_HEADER} header or as Authorization: Bearer"),
        AuthFailureReason.UNKNOWN_KEY: (401, "Invalid API key"),
        AuthFailureReason.WRONG_SECRET: (401, "Invalid API key"),
        AuthFailureReason.KEY_REVOKED: (403, "This API key has been revoked"),
        AuthFailureReason.ACCOUNT_SUSPENDED: (403, "This account is suspended"),
        AuthFailureReason.API_DISABLED: (403, "API access is disabled for this account"),
    }
    scope_denied = "This API key does not have the {scope} scope"

    def __init__(self, agent_keys: str | None = None) -> None:
        self.agent_keys = agent_keys

    def credentials(self) -> str | None:
        secret = request.headers.get(API_KEY_HEADER, "").strip()
        if secret:
            return secret
        scheme, _, token = request.headers.get("Authorization", "").strip().partition(" ")
        if scheme.lower() == "bearer" and token.strip():
            return token.strip()
        return None

    def authenticate(self) -> AuthResult:
        return _authenticated(self, authenticate_secret(self.credentials()))

    def require_scope(self, result: AuthResult, scope: str) -> None:
        if not has_scope(result, scope):
            fail(403, self.scope_denied.format(scope=scope))


class KeyPair(SecretKey):
    """The publishable key and its secret (see the module docstring)."""

    schemes = {
        "PublishableKey": {"type": "apiKey", "in": "header", "name": "x-api-key"},
        "SecretKey": {"type": "apiKey", "in": "header", "name": "x-api-secret"},
        "PublicBasicAuth": {"type": "http", "scheme": "basic"},
    }
    security = [{"PublishableKey": [], "SecretKey": []}, {"PublicBasicAuth": []}]
    documented = ((401, "Missing publishable key, or unknown key"),
                  (403, "Wrong secret, account not active, API not enabled, or scope missing"))
    failures = {
        AuthFailureReason.MISSING_CREDENTIALS: (
            401, "Missing API key. Send your publishable key in the x-api-key header."),
        AuthFailureReason.UNKNOWN_KEY: (401, "Invalid API credentials."),
        AuthFailureReason.KEY_REVOKED: (401, "Invalid API credentials."),
        AuthFailureReason.WRONG_SECRET: (403, "Invalid API credentials."),
        AuthFailureReason.ACCOUNT_SUSPENDED: (403, "This account is not active. Please contact support."),
        AuthFailureReason.API_DISABLED: (403, "The API is not enabled for this account. Please contact support."),
    }
    scope_denied = "This API key does not have the {scope} scope."

    def credentials(self) -> tuple[str | None, str | None]:
        pk = request.headers.get("x-api-key", "").strip() or None
        secret = request.headers.get("x-api-secret", "").strip() or None
        basic = request.authorization if request.authorization and request.authorization.type == "basic" else None
        if pk is None and basic is not None:
            pk = (basic.username or "").strip() or None
            if secret is None:
                secret = (basic.password or "").strip() or None
        if secret is None:
            data = bodies.json_object()
            sent = data.get("secret") if data else None
            if isinstance(sent, str) and sent.strip():
                secret = sent.strip()
        if secret is None and basic is not None:
            secret = (basic.password or "").strip() or None
        return pk, secret

    def authenticate(self) -> AuthResult:
        return _authenticated(self, authenticate_pair(*self.credentials()))


def _authenticated(style: SecretKey, result: AuthResult | AuthFailure) -> AuthResult:
    if isinstance(result, AuthFailure):
        fail(*style.failures[result.reason])
    if style.agent_keys is not None and result.owner_agent_id is not None:
        fail(403, style.agent_keys)
    return result


@dataclass(frozen=True)
class SignedReport:
    """A provider's report whose signature is the account's: the parsed body, and the
    provider call it names, with its call and account."""

    payload: dict
    link: ProviderCall

    @property
    def account(self) -> Account:
        return self.link.call.account


class ProviderSignature:
    """A provider's report signed with the owning account's webhook secret (see the module
    docstring)."""

    scoped = False
    schemes = {
        "WebhookSignature": {"type": "apiKey", "in": "header", "name": "X-Webhook-Signature",
                             "description": "t=<unix seconds>,v1=<HMAC-SHA256 of \"<t>.<body>\">"},
        "PayloadSignature": {"type": "apiKey", "in": "header", "name": "X-Signature",
                             "description": "sha256=<HMAC-SHA256 of the body> (also as X-Voicegw-Signature)"},
    }
    security = [{"WebhookSignature": []}, {"PayloadSignature": []}]
    documented = ((401, "Invalid signature, or a report naming no known call"),)
    #: Checked when the report names no known call, so that it costs what a known one does.
    _NO_SECRETS = [secrets.token_hex(32)]

    def authenticate(self) -> SignedReport:
        raw = request.get_data(cache=True)
        try:
            payload = peer_json.loads(raw.decode("utf-8"))
        except peer_json.TooDeep:
            fail(400, "The body is nested too deeply")
        except ValueError:  # UnicodeDecodeError included
            fail(400, "Invalid JSON body")
        if not isinstance(payload, dict):
            fail(400, "The body must be a JSON object")
        fault = text_fault(payload)
        if fault:
            fail(400, f"The body contains {fault}")
        provider_call_id = payload.get("provider_call_id")
        if not isinstance(provider_call_id, str) or not provider_call_id.strip():
            fail(400, "provider_call_id is required")
        with connection_scope():
            link = find_provider_call(provider_call_id.strip())
            known = link.call.account.webhook_secrets() if link is not None else self._NO_SECRETS
        if not signed_by(known, raw, payload, request.headers) or link is None:
            logger.warning("call-completed for %r: invalid signature, or no such call", provider_call_id[:128])
            fail(401, "Invalid signature")
        return SignedReport(payload, link)

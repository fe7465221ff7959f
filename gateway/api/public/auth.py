"""Who is calling: the publishable key and secret pair of the public calling API.

Where the credentials are read from:

* the publishable key (``pk_live_…``): the ``x-api-key`` header; without it, the user name
  of HTTP Basic auth;
* the secret (``sk_live_…``): the ``x-api-secret`` header; with Basic auth, its password;
  else the ``secret`` field of the JSON body. A header always beats the body.

The answers, exactly as the contract's table has them:

=========================================  ====  ==============================================
situation                                  HTTP  details
=========================================  ====  ==============================================
no publishable key sent                    401   Missing API key. Send your publishable key in
                                                 the x-api-key header.
unknown publishable key (or revoked key)   401   Invalid API credentials.
known key, wrong or missing secret         403   Invalid API credentials.
account is not active                      403   This account is not active. Please contact
                                                 support.
API access not enabled for the account     403   The API is not enabled for this account.
                                                 Please contact support.
=========================================  ====  ==============================================

Unknown key and wrong secret have the same words and cost the same work
(``authenticate_pair`` hashes and compares in both cases). The account's state is only
told to a caller who proved the secret. Two more refusals, after those: a key that
belongs to one agent (403, this API is account-wide) and a key without the operation's
scope (403).
"""
from __future__ import annotations

from flask import request

from gateway.auth.keys import AuthFailure, AuthFailureReason, AuthResult, authenticate_pair, has_scope

from . import envelope

MISSING_KEY = "Missing API key. Send your publishable key in the x-api-key header."
INVALID = "Invalid API credentials."
NOT_ACTIVE = "This account is not active. Please contact support."
NOT_ENABLED = "The API is not enabled for this account. Please contact support."
AGENT_KEY = "This API key belongs to a single agent and cannot be used with this API."

FAILURES = {
    AuthFailureReason.MISSING_CREDENTIALS: (401, MISSING_KEY),
    AuthFailureReason.UNKNOWN_KEY: (401, INVALID),
    AuthFailureReason.KEY_REVOKED: (401, INVALID),
    AuthFailureReason.WRONG_SECRET: (403, INVALID),
    AuthFailureReason.ACCOUNT_SUSPENDED: (403, NOT_ACTIVE),
    AuthFailureReason.API_DISABLED: (403, NOT_ENABLED),
}

#: What each scope lets a key do, for the 403 of a key without it.
SCOPE_DENIED = "This API key does not have the {scope} scope."


def credentials() -> tuple[str | None, str | None]:
    """``(publishable key, secret)`` as this request sends them (see the module docstring)."""
    pk = request.headers.get("x-api-key", "").strip() or None
    secret = request.headers.get("x-api-secret", "").strip() or None
    basic = request.authorization if request.authorization and request.authorization.type == "basic" else None
    if pk is None and basic is not None:
        pk = (basic.username or "").strip() or None
        if secret is None:
            secret = (basic.password or "").strip() or None
    if secret is None:
        data = envelope.body()
        sent = data.get("secret") if data else None
        if isinstance(sent, str) and sent.strip():
            secret = sent.strip()
    if secret is None and basic is not None:
        secret = (basic.password or "").strip() or None
    return pk, secret


def authenticate() -> AuthResult:
    pk, secret = credentials()
    result = authenticate_pair(pk, secret)
    if isinstance(result, AuthFailure):
        status, details = FAILURES[result.reason]
        envelope.abort(status, details)
    if result.owner_agent_id is not None:
        envelope.abort(403, AGENT_KEY)
    return result


def require_scope(result: AuthResult, scope: str) -> None:
    if not has_scope(result, scope):
        envelope.abort(403, SCOPE_DENIED.format(scope=scope))

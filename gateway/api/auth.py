"""Request authentication for the secret-only surfaces (``/api``, ``/v1``).

The secret comes from ``X-API-KEY: sk_live_…`` or ``Authorization: Bearer sk_live_…``
(``X-API-KEY`` wins when both are sent). :func:`authenticate_request` puts the
``AuthResult`` on ``flask.g.auth`` or stops the request:

======================  ====  ===========================================================
situation               code  error
======================  ====  ===========================================================
no key sent             401   Missing API key: send it in the X-API-KEY header or as
                              Authorization: Bearer
unknown key             401   Invalid API key
revoked key             403   This API key has been revoked
suspended account       403   This account is suspended
API disabled            403   API access is disabled for this account
scope missing           403   This API key does not have the <scope> scope
over the rate limit     429   Rate limit exceeded: <n> requests per minute (Retry-After)
======================  ====  ===========================================================

Rate limit: ``Account.rate_limit_per_minute`` requests per fixed one-minute window per
account, counted in this process (``voicegw serve`` is one process); 0 or less means
no limit.
"""

from __future__ import annotations

import math
import time
from typing import Callable

from flask import g, request

from gateway.api.errors import fail
from gateway.auth.keys import AuthFailure, AuthFailureReason, AuthResult, authenticate_secret, has_scope

API_KEY_HEADER = "X-API-KEY"

MESSAGES = {
    AuthFailureReason.MISSING_CREDENTIALS: (
        401, f"Missing API key: send it in the {API_KEY_HEADER} header or as Authorization: Bearer"),
    AuthFailureReason.UNKNOWN_KEY: (401, "Invalid API key"),
    AuthFailureReason.WRONG_SECRET: (401, "Invalid API key"),
    AuthFailureReason.KEY_REVOKED: (403, "This API key has been revoked"),
    AuthFailureReason.ACCOUNT_SUSPENDED: (403, "This account is suspended"),
    AuthFailureReason.API_DISABLED: (403, "API access is disabled for this account"),
}


def presented_secret() -> str | None:
    """The secret the request carries, if any."""
    secret = request.headers.get(API_KEY_HEADER, "").strip()
    if secret:
        return secret
    scheme, _, credentials = request.headers.get("Authorization", "").strip().partition(" ")
    if scheme.lower() == "bearer" and credentials.strip():
        return credentials.strip()
    return None


def authenticate_request(limiter: "RateLimiter | None" = None) -> AuthResult:
    """Authenticate the current request; ``g.auth`` is set on success."""
    result = authenticate_secret(presented_secret())
    if isinstance(result, AuthFailure):
        status, message = MESSAGES[result.reason]
        fail(status, message)
    if limiter is not None:
        limit = result.account.rate_limit_per_minute
        retry_after = limiter.hit(result.account.id, limit)
        if retry_after is not None:
            fail(429, f"Rate limit exceeded: {limit} requests per minute",
                 headers={"Retry-After": str(max(1, math.ceil(retry_after)))})
    g.auth = result
    return result


def require_scope(scope: str) -> None:
    if not has_scope(g.auth, scope):
        fail(403, f"This API key does not have the {scope} scope")


class RateLimiter:
    """Fixed one-minute windows per account. Greenlet-safe: nothing here yields."""

    WINDOW = 60.0

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._windows: dict[int, tuple[float, int]] = {}

    def hit(self, account_id: int, limit: int | None) -> float | None:
        """Count one request; None if allowed, else the seconds until the window resets."""
        if not limit or limit <= 0:
            return None
        now = self._clock()
        start, count = self._windows.get(account_id, (now, 0))
        if now - start >= self.WINDOW:
            start, count = now, 0
        if count >= limit:
            return self.WINDOW - (now - start)
        self._windows[account_id] = (start, count + 1)
        return None

"""API keys: create, rotate, revoke, authenticate; and the scopes a key carries.

A key is a pair: a publishable id ``pk_live_…`` (a lookup handle, not a secret)
and a secret ``sk_live_…``, shown in full once, when it is created or rotated.
Every surface accepts the secret alone (``authenticate_secret``); the public
calling API also accepts the pair (``authenticate_pair``).

How secrets are stored
----------------------
Only ``sha256(secret)`` is stored, in a unique column. No salt, no slow KDF,
no pepper, on purpose:

* A secret is 32 bytes from ``secrets`` (256 bits). Salts and slow KDFs such as
  scrypt or PBKDF2 exist to make guessing low-entropy *passwords* expensive;
  nobody can enumerate 2**256 candidates at any hash speed, so they would add
  nothing here but cost.
* An unsalted hash is deterministic, so the secret-only surfaces find the key
  with one indexed equality lookup (``WHERE secret_hash = …``), O(1) per
  request. With a per-key salt we would have to hash against every key of
  every account; with a slow KDF, each request would burn tens of milliseconds.
* A server-side pepper (HMAC key) would only matter for guessable inputs, and
  would be one more secret to deploy, rotate and never lose.

A leaked database therefore yields no usable secret. Lookups by hash leak
nothing through timing either: what an attacker controls is the hash's input,
not its value. The stored hash is still compared with ``hmac.compare_digest``,
and a miss does the same hashing and comparing as a hit.

Outcomes
--------
``authenticate_*`` return an ``AuthResult`` (truthy) or an ``AuthFailure``
(falsy) whose ``reason`` tells the surfaces' situations apart. The public
calling API maps them to its contract (the others answer 401 ``{"error": …}``):

====================  ===========================================================
reason                public calling API
====================  ===========================================================
MISSING_CREDENTIALS   401 Missing API key. Send your publishable key in the x-api-key header.
UNKNOWN_KEY           401 Invalid API credentials.
WRONG_SECRET          403 Invalid API credentials.   (known pk, wrong or missing secret)
KEY_REVOKED           401 Invalid API credentials.   (suggested: a revoked pk is no key)
ACCOUNT_SUSPENDED     403 This account is not active. Please contact support.
API_DISABLED          403 The API is not enabled for this account. Please contact support.
====================  ===========================================================

Revocation and the account's state are reported only to a caller who proved
the secret, so they cannot be probed with a publishable id alone.
"""
from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import Enum

from gateway.models import Account, Agent, ApiKey, utcnow

logger = logging.getLogger(__name__)

PUBLISHABLE_PREFIX = "pk_live_"
SECRET_PREFIX = "sk_live_"
PUBLISHABLE_RANDOM_BYTES = 18  # 24 url-safe characters
SECRET_RANDOM_BYTES = 32  # 43 url-safe characters, 256 bits
SECRET_PREFIX_SHOWN = 12  # characters of the secret kept for display: "sk_live_AbCd"
MAX_KEY_NAME_LENGTH = 100

# ``last_used_at`` is written at most this often per key, not on every request.
LAST_USED_RESOLUTION = timedelta(minutes=1)

#: Every scope a key may carry, and what it grants. A surface checks the scope
#: of each operation with ``has_scope``.
SCOPES: dict[str, str] = {
    # Calls, on /api (call control), /v1 (agent calls) and /api/public/v1.
    "calls:read": "read calls: status, lists, events, transcripts and analysis",
    "calls:write": "place calls and control live ones (hangup, transfer, redirect);"
    " post call results to the completion webhook",
    "agents:read": "list the account's agents (/v1/agents)",
    "recordings:read": "download call recordings",
    "otp:send": "place voice verification (OTP) calls",
    "otp:verify": "verify submitted OTP codes",
    "campaigns:read": "list saved campaigns (public calling API)",
    "campaigns:trigger": "trigger a saved campaign for one number (public calling API)",
    "account:read": "read the account's settings and wallet balance",
    # The voice-agent admin surface (/api/agent-api/voice), as its contract names them.
    "voice:read": "list and read agents, voices, phone numbers, conversations,"
    " knowledge base, tools and campaigns",
    "voice:write": "create, update and delete agents, knowledge base, tools and env vars;"
    " attach existing phone numbers",
    "voice:campaign:write": "create campaigns and load their contacts",
    "voice:campaign:execute": "request a campaign start, pause or stop (queued for human approval)",
    "voice:read:all": "read across owners: data of every agent of the account (ops and audit keys)",
}

#: A scope that grants others with it.
IMPLIED_SCOPES: dict[str, frozenset[str]] = {"voice:read:all": frozenset({"voice:read"})}

#: What a key created without explicit scopes gets: everything on the account's
#: own data. ``voice:read:all`` is left out: reading across owners is for keys
#: made for that purpose.
DEFAULT_SCOPES: tuple[str, ...] = tuple(s for s in SCOPES if s != "voice:read:all")


class UnknownScope(ValueError):
    """A scope name that is not in ``SCOPES``."""


class KeyRevoked(ValueError):
    """The operation needs a key that has not been revoked."""


class AuthFailureReason(str, Enum):
    #: No credential at all (pair: no publishable key).
    MISSING_CREDENTIALS = "missing_credentials"
    #: Secret alone: no key has this secret. Pair: no key has this publishable id.
    UNKNOWN_KEY = "unknown_key"
    #: Pair only: the publishable id is known, the secret is wrong or missing.
    WRONG_SECRET = "wrong_secret"
    KEY_REVOKED = "key_revoked"
    ACCOUNT_SUSPENDED = "account_suspended"
    API_DISABLED = "api_disabled"


@dataclass(frozen=True)
class AuthFailure:
    reason: AuthFailureReason

    def __bool__(self) -> bool:
        return False


@dataclass(frozen=True, eq=False)
class AuthResult:
    """An authenticated request: whose account, which key, what it may do."""

    account: Account
    api_key: ApiKey
    scopes: frozenset[str]

    @property
    def owner_agent_id(self) -> int | None:
        """The agent whose data alone this key may touch; None for an account-wide key."""
        return self.api_key.owner_agent_id


def hash_secret(secret: str) -> str:
    """The stored form of a secret: hex SHA-256 of its UTF-8 bytes (see the module docstring)."""
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


# Compared against when no key matched, so that a miss costs what a hit costs.
_NO_SUCH_KEY_HASH = hash_secret(SECRET_PREFIX + "no-such-key")


def normalize_scopes(scopes: Iterable[str] | None) -> list[str]:
    """``scopes`` deduplicated in ``SCOPES`` order; None gives ``DEFAULT_SCOPES``.

    Raises ``UnknownScope`` naming the unknown ones, or ``ValueError`` for an empty list.
    """
    if scopes is None:
        return list(DEFAULT_SCOPES)
    if isinstance(scopes, str):
        raise TypeError("scopes must be a list of scope names, not a string")
    given = {scope.strip() if isinstance(scope, str) else scope for scope in scopes}
    unknown = sorted(repr(s) for s in given if s not in SCOPES)
    if unknown:
        raise UnknownScope(
            f"unknown scope{'s' if len(unknown) > 1 else ''} {', '.join(unknown)};"
            f" known scopes: {', '.join(SCOPES)}"
        )
    if not given:
        raise ValueError("a key needs at least one scope; omit scopes for the default set")
    return [scope for scope in SCOPES if scope in given]


def has_scope(result: AuthResult, scope: str) -> bool:
    """Whether the authenticated key grants ``scope``, directly or through ``IMPLIED_SCOPES``."""
    if scope not in SCOPES:
        raise UnknownScope(f"unknown scope {scope!r}")  # a typo in the caller, not a denial
    if scope in result.scopes:
        return True
    return any(scope in IMPLIED_SCOPES.get(granted, ()) for granted in result.scopes)


def create_key(
    account: Account,
    scopes: Iterable[str] | None = None,
    name: str | None = None,
    owner_agent: Agent | None = None,
    *,
    now: datetime | None = None,
) -> tuple[ApiKey, str]:
    """Create a key for ``account``; return it and its secret, which is never retrievable again."""
    scope_list = normalize_scopes(scopes)
    if name is not None:
        name = name.strip() or None
        if name is not None and len(name) > MAX_KEY_NAME_LENGTH:
            raise ValueError(f"the key name is longer than {MAX_KEY_NAME_LENGTH} characters")
    if owner_agent is not None and owner_agent.account_id != account.id:
        raise ValueError(f"agent {owner_agent.key!r} belongs to another account")
    secret = _new_secret()
    api_key = ApiKey.create(
        account=account,
        publishable_id=PUBLISHABLE_PREFIX + secrets.token_urlsafe(PUBLISHABLE_RANDOM_BYTES),
        secret_hash=hash_secret(secret),
        secret_prefix=secret[:SECRET_PREFIX_SHOWN],
        scopes=scope_list,
        owner_agent=owner_agent,
        name=name,
        created_at=now or utcnow(),
    )
    logger.info("account %s: created key %s", account.id, api_key.publishable_id)
    return api_key, secret


def rotate_key(api_key: ApiKey, *, now: datetime | None = None) -> str:
    """Give ``api_key`` a new secret and return it; the old one stops working at once.

    The publishable id stays. A revoked key cannot be rotated (``KeyRevoked``).
    """
    secret = _new_secret()
    fields = {
        ApiKey.secret_hash: hash_secret(secret),
        ApiKey.secret_prefix: secret[:SECRET_PREFIX_SHOWN],
        ApiKey.rotated_at: now or utcnow(),
    }
    # Conditional, so that a concurrent revocation cannot be undone by a rotation.
    updated = (
        ApiKey.update(fields)
        .where((ApiKey.id == api_key.id) & ApiKey.revoked_at.is_null())
        .execute()
    )
    if not updated:
        raise KeyRevoked(f"key {api_key.publishable_id} is revoked; create a new key instead")
    api_key.secret_hash = fields[ApiKey.secret_hash]
    api_key.secret_prefix = fields[ApiKey.secret_prefix]
    api_key.rotated_at = fields[ApiKey.rotated_at]
    logger.info("account %s: rotated key %s", api_key.account_id, api_key.publishable_id)
    return secret


def revoke_key(api_key: ApiKey, *, now: datetime | None = None) -> bool:
    """Revoke ``api_key`` for good; False if it already was."""
    now = now or utcnow()
    updated = (
        ApiKey.update(revoked_at=now)
        .where((ApiKey.id == api_key.id) & ApiKey.revoked_at.is_null())
        .execute()
    )
    if updated:
        api_key.revoked_at = now
        logger.info("account %s: revoked key %s", api_key.account_id, api_key.publishable_id)
    return bool(updated)


def find_key(publishable_id: str) -> ApiKey | None:
    """The key with this publishable id, revoked or not."""
    return ApiKey.get_or_none(ApiKey.publishable_id == publishable_id)


def authenticate_secret(secret: str | None, *, now: datetime | None = None) -> AuthResult | AuthFailure:
    """Authenticate a request that carries the secret alone (``X-API-KEY``, ``Bearer``)."""
    secret = _clean(secret)
    if secret is None:
        return AuthFailure(AuthFailureReason.MISSING_CREDENTIALS)
    presented = hash_secret(secret)
    api_key = (
        ApiKey.select(ApiKey, Account)
        .join(Account)
        .where(ApiKey.secret_hash == presented)
        .get_or_none()
    )
    stored = api_key.secret_hash if api_key is not None else _NO_SUCH_KEY_HASH
    if not hmac.compare_digest(presented, stored) or api_key is None:
        return AuthFailure(AuthFailureReason.UNKNOWN_KEY)
    return _admit(api_key, now)


def authenticate_pair(
    publishable_id: str | None, secret: str | None, *, now: datetime | None = None
) -> AuthResult | AuthFailure:
    """Authenticate a publishable id and a secret, as the public calling API sends them."""
    publishable_id = _clean(publishable_id)
    if publishable_id is None:
        return AuthFailure(AuthFailureReason.MISSING_CREDENTIALS)
    secret = _clean(secret)
    # Hash even a missing secret, so that every outcome below costs the same.
    presented = hash_secret(secret if secret is not None else "")
    api_key = (
        ApiKey.select(ApiKey, Account)
        .join(Account)
        .where(ApiKey.publishable_id == publishable_id)
        .get_or_none()
    )
    stored = api_key.secret_hash if api_key is not None else _NO_SUCH_KEY_HASH
    secret_matches = hmac.compare_digest(presented, stored) and secret is not None
    if api_key is None:
        return AuthFailure(AuthFailureReason.UNKNOWN_KEY)
    if not secret_matches:
        return AuthFailure(AuthFailureReason.WRONG_SECRET)
    return _admit(api_key, now)


def _admit(api_key: ApiKey, now: datetime | None) -> AuthResult | AuthFailure:
    """The checks after the secret is proven: key, account, API access; then note the use."""
    account = api_key.account
    if api_key.revoked_at is not None:
        return AuthFailure(AuthFailureReason.KEY_REVOKED)
    if not account.is_active:
        return AuthFailure(AuthFailureReason.ACCOUNT_SUSPENDED)
    if not account.api_enabled:
        return AuthFailure(AuthFailureReason.API_DISABLED)
    _note_use(api_key, now or utcnow())
    return AuthResult(account=account, api_key=api_key, scopes=frozenset(api_key.scopes))


def _note_use(api_key: ApiKey, now: datetime) -> None:
    """Set ``last_used_at``, at most once per ``LAST_USED_RESOLUTION`` per key."""
    cutoff = now - LAST_USED_RESOLUTION
    if api_key.last_used_at is not None and api_key.last_used_at > cutoff:
        return  # the row we just read is recent enough: no write at all
    # The condition keeps several processes from all writing in the same minute.
    updated = (
        ApiKey.update(last_used_at=now)
        .where(
            (ApiKey.id == api_key.id)
            & (ApiKey.last_used_at.is_null() | (ApiKey.last_used_at <= cutoff))
        )
        .execute()
    )
    if updated:
        api_key.last_used_at = now


def _new_secret() -> str:
    return SECRET_PREFIX + secrets.token_urlsafe(SECRET_RANDOM_BYTES)


def _clean(value: str | None) -> str | None:
    """A credential as sent, or None if absent or blank."""
    if not isinstance(value, str):
        return None
    value = value.strip()
    return value or None

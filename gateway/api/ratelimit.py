"""Per-account request limits shared by every server process, through the database.

Fixed one-minute windows (aligned on the minute) per account and *bucket*: each request
adds one to the account's row for the current window of its surface's bucket with a
single atomic upsert that returns the new count::

    INSERT INTO rate_limit_windows (account_id, bucket, window_start, hits) VALUES (?, ?, ?, 1)
    ON CONFLICT (account_id, bucket, window_start) DO UPDATE SET hits = rate_limit_windows.hits + 1
    RETURNING hits

(PostgreSQL; SQLite >= 3.35 runs the same statement.) Two processes, or two hosts, on one
database therefore count into the same row and can never admit more than the limit
between them. A request over the limit is still counted, so a client that keeps
hammering stays limited until the window ends. When an account opens a new window of a
bucket, its older rows of that bucket are deleted.

Each surface counts in a bucket of its own, named after it (``api``, ``v1``, ``public``,
``voice``), against the limit of its contract (``RateLimit.default``: 60 a minute for
``/v1``, whose events contract says so; 120 where a contract says 120 or says nothing).
An account may override it (:func:`limit_for`): for one surface (``Account.rate_limits``,
``{"v1": 300}``), else for all of them (``Account.rate_limit_per_minute``); 0 or less
means no limit. Every counted answer carries the headers of the IETF RateLimit header
fields draft, ``RateLimit-Limit``, ``RateLimit-Remaining`` and ``RateLimit-Reset``
(seconds until the window ends), and a 429 ``Retry-After`` too.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Callable

from gateway.models import RateLimitWindow

WINDOW = 60

#: Seconds since the epoch; tests replace it.
clock = time.time


@dataclass(frozen=True)
class Verdict:
    limit: int
    hits: int
    reset: int  # seconds until the window ends, at least 1

    @property
    def allowed(self) -> bool:
        return self.hits <= self.limit

    @property
    def remaining(self) -> int:
        return max(0, self.limit - self.hits)

    def headers(self) -> dict[str, str]:
        return {"RateLimit-Limit": str(self.limit), "RateLimit-Remaining": str(self.remaining),
                "RateLimit-Reset": str(self.reset)}


@dataclass(frozen=True)
class RateLimit:
    """A surface's rate-limit policy: the bucket it counts in (and an account's override
    names), its requests per minute unless the account overrides them, and the 429's
    message for a limit."""

    bucket: str
    default: int
    exceeded: Callable[[int], str]
    #: What the 429 is documented as.
    description: str = "Rate limit exceeded"


def limit_for(account, policy: RateLimit) -> int:
    """The account's requests per minute on ``policy``'s surface: its override for that
    surface, else its override for every surface, else the surface's default."""
    own = account.rate_limits.get(policy.bucket) if isinstance(account.rate_limits, dict) else None
    if isinstance(own, int) and not isinstance(own, bool):
        return own
    if account.rate_limit_per_minute is not None:
        return account.rate_limit_per_minute
    return policy.default


def hit(account_id: int, limit: int, bucket: str, now: float | None = None) -> Verdict | None:
    """Count one request of the account in ``bucket``; None when it has no limit."""
    if not limit or limit <= 0:
        return None
    now = clock() if now is None else now
    window_start = int(now // WINDOW) * WINDOW
    rows = list(
        RateLimitWindow.insert(account=account_id, bucket=bucket, window_start=window_start, hits=1)
        .on_conflict(conflict_target=[RateLimitWindow.account, RateLimitWindow.bucket, RateLimitWindow.window_start],
                     update={RateLimitWindow.hits: RateLimitWindow.hits + 1})
        .returning(RateLimitWindow.hits)
        .execute()
    )
    hits = rows[0].hits
    if hits == 1:  # this request opened the window: drop the account's older ones of the bucket
        RateLimitWindow.delete().where((RateLimitWindow.account == account_id) & (RateLimitWindow.bucket == bucket)
                                       & (RateLimitWindow.window_start < window_start)).execute()
    reset = max(1, math.ceil(window_start + WINDOW - now))
    return Verdict(limit, hits, reset)

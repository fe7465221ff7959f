"""The webhook dispatcher: claims due deliveries from the outbox and POSTs them.

Any number of dispatchers, in any number of processes, may share one database:

* **Claim.** PostgreSQL: ``SELECT … FOR UPDATE SKIP LOCKED``, so concurrent
  dispatchers take disjoint rows without waiting on each other. SQLite has no row
  locks: the claim runs in a ``BEGIN IMMEDIATE`` transaction (one writer at a time)
  and its UPDATE is guarded by the same conditions as the SELECT.
* **Lease.** A claimed row is ``delivering`` and its ``next_attempt_at`` becomes the
  end of the lease. A dispatcher killed mid-request leaves the row so; once the lease
  has run out any dispatcher claims it again (at-least-once: the receiver may see the
  event twice, with the same ``evt_…`` id). The result of an attempt is written only
  if the row is still the one this dispatcher claimed (same status and attempt count).
* **Per-call order.** A call's delivery is not claimed while an earlier delivery of
  the same call is still ``pending`` or ``delivering``: a call's events arrive in the
  order they happened, and a receiver that is down gets them in order once back.
* **Outcome.** 2xx: ``delivered``. 410 Gone: ``stopped`` (the receiver asked us to
  stop). A URL the policy refuses (``gateway.webhooks.urls``): ``dead`` at once.
  Anything else (other codes, timeouts, connection errors): retried until the retry
  window (``max_age``, 24 hours, from when it was queued) is over, then ``dead``, the
  dead-letter state: kept, listed and replayed by an operator (``voicegw webhooks list
  --dead``, ``replay --dead``). A claimed delivery always gets its attempt, however old.
* **Schedule.** The delay after attempt ``n`` is drawn uniformly from ``[c/2, c]``,
  ``c = min(cap, base * 2**(n-1))``: exponential backoff with "equal" jitter, 10 s
  doubling up to 1 hour. Full jitter (``[0, c]``) spreads retries as well but can draw
  near-zero delays, so it does not bound how many attempts a day brings; with a floor
  of ``c/2`` a receiver that is down gets an attempt at least every hour and at most
  two an hour (30 to 60 in a day), and one that comes back gets its events within the
  hour. A retry that would fall after the end of the window is made at its very end,
  so the window is tried to its end. ``max_attempts`` (none by default) can bound the
  count too.
  The schedule lives in the row (``next_attempt_at``), not in a process: it survives
  restarts, and any dispatcher carries it on.
* **Records.** Every attempt is a ``WebhookAttempt`` row: code, latency, error.

The dispatcher reads the time from ``clock`` (``utcnow`` unless given), so a test can
run a day of retries without waiting for it; signatures always carry the real time.

Each attempt is signed afresh, in the delivery's header profile
(``gateway.webhooks.profiles``), with the account's current secret, so a rotation
applies to retries too, and a timestamped signature carries the time of the attempt.
"""
from __future__ import annotations

import logging
import random
import time
from datetime import datetime, timedelta
from typing import Callable

import gevent
import gevent.event
import gevent.pool
import requests
from peewee import SQL, DatabaseProxy, PostgresqlDatabase, fn

from gateway import models
from gateway.models.db import connection_scope
from gateway.models import Account, WebhookAttempt, WebhookDelivery, utcnow
from gateway.models.webhooks import OPEN_STATUSES
from gateway.webhooks import profiles
from gateway.webhooks.urls import UrlRefused, guarded_session, split_url

logger = logging.getLogger(__name__)

#: Bytes of a receiver's response read at most (the rest is dropped).
MAX_RESPONSE_BYTES = 64 * 1024
_ERROR_SNIPPET = 200


class Dispatcher:
    def __init__(
        self,
        database=None,
        *,
        max_attempts: int | None = None,
        max_age: timedelta = timedelta(hours=24),
        concurrency: int = 10,
        request_timeout: float = 10.0,
        backoff_base: float = 10.0,
        backoff_cap: float = 3600.0,
        lease: float = 60.0,
        poll_interval: float = 1.0,
        session: requests.Session | None = None,
        rng=random.random,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        # ``hook(status, lag_seconds)`` after each recorded attempt (the metrics count them).
        self.attempt_hooks: list[Callable[[str, float], None]] = []
        if (max_attempts is not None and max_attempts < 1) or concurrency < 1:
            raise ValueError("max_attempts and concurrency must be at least 1")
        if max_age <= timedelta(0):
            raise ValueError("the retry window (max_age) must be positive")
        if not 0 < backoff_base <= backoff_cap:
            raise ValueError("the backoff base must be positive and at most the cap")
        if lease <= request_timeout:
            raise ValueError(f"the lease ({lease}s) must outlast a request ({request_timeout}s)")
        database = database if database is not None else models.database
        self.db = database.obj if isinstance(database, DatabaseProxy) else database
        self.max_attempts = max_attempts
        self.max_age = max_age
        self.concurrency = concurrency
        self.request_timeout = request_timeout
        self.backoff_base = backoff_base
        self.backoff_cap = backoff_cap
        self.lease = lease
        self.poll_interval = poll_interval
        self.session = session or guarded_session(pool_maxsize=concurrency)
        self.rng = rng
        self.clock = clock
        self._wake = gevent.event.Event()
        self._stopping = gevent.event.Event()
        self._greenlet: gevent.Greenlet | None = None
        self._pool: gevent.pool.Pool | None = None

    # -- claiming ---------------------------------------------------------------------------
    def _due_query(self, limit: int, now):
        D = WebhookDelivery
        earlier = WebhookDelivery.alias("earlier")
        earlier_open = (earlier.select(SQL("1"))
                        .where((earlier.call_uuid == D.call_uuid) & (earlier.id < D.id)
                               & earlier.status.in_(OPEN_STATUSES)))
        return (D.select(D.id)
                .where(D.status.in_(OPEN_STATUSES) & (D.next_attempt_at <= now) & ~fn.EXISTS(earlier_open))
                .order_by(D.id)
                .limit(limit))

    def claim(self, limit: int | None = None) -> list[WebhookDelivery]:
        """Claim up to ``limit`` due deliveries (lease taken, attempt counted); return them."""
        limit = limit or self.concurrency
        now = self.clock()
        D = WebhookDelivery
        postgres = isinstance(self.db, PostgresqlDatabase)
        transaction = self.db.atomic() if postgres else self.db.atomic(lock_type="IMMEDIATE")
        with transaction:
            query = self._due_query(limit, now)
            if postgres:
                query = query.for_update(skip_locked=True, of=D)
            ids = [row.id for row in query]
            if not ids:
                return []
            (D.update(status="delivering", attempts=D.attempts + 1,
                      next_attempt_at=now + timedelta(seconds=self.lease))
             .where(D.id.in_(ids) & D.status.in_(OPEN_STATUSES) & (D.next_attempt_at <= now))
             .execute())
            claimed = list(D.select(D, Account).join(Account)
                           .where(D.id.in_(ids) & (D.status == "delivering")).order_by(D.id))
        return claimed

    # -- one attempt ---------------------------------------------------------------------------
    def backoff(self, attempts: int) -> float:
        """Seconds before the next attempt after ``attempts`` attempts (equal jitter)."""
        ceiling = min(self.backoff_cap, self.backoff_base * (2 ** min(max(attempts - 1, 0), 64)))
        return ceiling / 2 + self.rng() * ceiling / 2

    def retry_at(self, queued_at: datetime, attempts: int, now: datetime) -> datetime | None:
        """When to try again a delivery queued at ``queued_at`` whose attempt number
        ``attempts`` just failed at ``now``; None once its retry window is over."""
        window_end = queued_at + self.max_age
        if now >= window_end or (self.max_attempts is not None and attempts >= self.max_attempts):
            return None
        return min(now + timedelta(seconds=self.backoff(attempts)), window_end)

    def _post(self, delivery: WebhookDelivery) -> tuple[int | None, str | None, bool]:
        """``(code, error, permanent)`` of one POST."""
        body = delivery.body.encode("utf-8")
        headers = dict(delivery.headers or {})
        headers.update(profiles.signature_headers(delivery.header_profile, delivery.surface,
                                                  delivery.account.webhook_secrets(utcnow()), body, delivery.event_id))
        timeout = gevent.Timeout(self.request_timeout)
        timeout.start()
        try:
            split_url(delivery.url)  # a malformed URL is refused like a forbidden address
            response = self.session.post(delivery.url, data=body, headers=headers, allow_redirects=False,
                                         timeout=(self.request_timeout, self.request_timeout), stream=True)
            try:
                code = response.status_code
                text = response.raw.read(MAX_RESPONSE_BYTES, decode_content=True) or b""
            finally:
                response.close()
        except gevent.Timeout as exc:
            if exc is not timeout:
                raise
            return None, f"timed out after {self.request_timeout:g}s", False
        except UrlRefused as exc:
            return None, str(exc), True
        except requests.RequestException as exc:
            return None, _describe(exc), False
        finally:
            timeout.close()
        if 200 <= code < 300:
            return code, None, False
        snippet = " ".join(text[:_ERROR_SNIPPET * 2].decode("utf-8", "replace").split())[:_ERROR_SNIPPET]
        return code, f"HTTP {code}" + (f": {snippet}" if snippet else ""), False

    def deliver(self, delivery: WebhookDelivery) -> str:
        """Make one attempt at a claimed delivery, record it; return the new status."""
        started_at = self.clock()
        started = time.monotonic()
        try:
            code, error, permanent = self._post(delivery)
        except Exception as exc:  # a bug or a broken row must not kill the dispatcher
            logger.exception("webhook %s: attempt failed unexpectedly", delivery.event_id)
            code, error, permanent = None, f"internal error: {exc.__class__.__name__}", False
        latency_ms = int((time.monotonic() - started) * 1000)
        ended_at = self.clock()
        fields = {"last_code": code, "last_error": error}
        if code is not None and 200 <= code < 300:
            fields.update(status="delivered", delivered_at=ended_at)
        elif code == 410:
            fields.update(status="stopped")
        else:
            retry_at = None if permanent else self.retry_at(delivery.queued_at, delivery.attempts, ended_at)
            if retry_at is None:
                fields.update(status="dead")
            else:
                fields.update(status="pending", next_attempt_at=retry_at)
        D = WebhookDelivery
        with connection_scope(self.db), self.db.atomic():
            WebhookAttempt.create(delivery=delivery.id, number=delivery.attempts, at=started_at,
                                  code=code, latency_ms=latency_ms, error=error)
            owned = (D.update(**fields)
                     .where((D.id == delivery.id) & (D.status == "delivering") & (D.attempts == delivery.attempts))
                     .execute())
        if not owned:
            logger.warning("webhook %s: the lease ran out during attempt %d; its result is not applied",
                           delivery.event_id, delivery.attempts)
        log = logger.info if fields["status"] in ("delivered", "pending") else logger.warning
        log("webhook %s %s call=%s > %s: %s (attempt %d, %s, %d ms)", delivery.event_id, delivery.event_type,
            delivery.call_uuid, delivery.url, fields["status"], delivery.attempts, code or error, latency_ms)
        for hook in self.attempt_hooks:
            hook(fields["status"], (ended_at - delivery.queued_at).total_seconds())
        return fields["status"]

    def _deliver_in_greenlet(self, delivery: WebhookDelivery) -> str:
        try:
            return self.deliver(delivery)
        except Exception:
            logger.exception("webhook %s: could not record the attempt", delivery.event_id)
            return "delivering"  # the lease runs out and it is retried
        finally:
            self._wake.set()  # a call's next delivery may be due now

    # -- loops -----------------------------------------------------------------------------------
    def run_once(self) -> int:
        """Claim what is due (up to ``concurrency``), deliver it, wait; return how many."""
        claimed = self.claim(self.concurrency)
        if claimed:
            pool = gevent.pool.Pool(self.concurrency)
            for delivery in claimed:
                pool.spawn(self._deliver_in_greenlet, delivery)
            pool.join()
        return len(claimed)

    def run_until_idle(self, max_rounds: int = 1000) -> int:
        """``run_once`` until nothing is due (deliveries waiting for a retry are not due)."""
        total = 0
        for _ in range(max_rounds):
            done = self.run_once()
            if not done:
                break
            total += done
        return total

    def wake(self) -> None:
        """Look for due deliveries now instead of at the next poll (e.g. after a commit)."""
        self._wake.set()

    def run_forever(self) -> None:
        """Deliver until :meth:`stop`; call in a greenlet of its own."""
        self._stopping.clear()
        self._pool = pool = gevent.pool.Pool(self.concurrency)
        with self.db.connection_context():
            while not self._stopping.is_set():
                self._wake.clear()
                free = pool.free_count()
                if free == 0:
                    pool.wait_available(timeout=self.poll_interval)
                    continue
                try:
                    claimed = self.claim(free)
                except Exception:
                    logger.exception("webhook dispatcher: claiming failed")
                    claimed = []
                    if self._stopping.wait(self.poll_interval):
                        break
                for delivery in claimed:
                    pool.spawn(self._deliver_in_greenlet, delivery)
                if len(claimed) < free:
                    self._wake.wait(self.poll_interval)

    def start(self) -> gevent.Greenlet:
        self._greenlet = gevent.spawn(self.run_forever)
        return self._greenlet

    def stop(self, timeout: float = 5.0) -> None:
        """Stop claiming; let attempts in flight finish for up to ``timeout`` seconds
        (one cut short keeps its row ``delivering`` until the lease runs out)."""
        self._stopping.set()
        self._wake.set()
        if self._greenlet is not None:
            self._greenlet.join(timeout)
        if self._pool is not None:
            self._pool.join(timeout=timeout)
            self._pool.kill(block=True, timeout=1)
        if self._greenlet is not None:
            self._greenlet.kill(block=True, timeout=1)
            self._greenlet = None


def _describe(exc: requests.RequestException) -> str:
    if isinstance(exc, requests.ConnectTimeout):
        return "connect timeout"
    if isinstance(exc, requests.Timeout):
        return "read timeout"
    if isinstance(exc, requests.ConnectionError):
        reason = exc.args[0] if exc.args else exc
        reason = getattr(reason, "reason", reason)
        return f"connection error: {' '.join(str(reason).split())}"[:300]
    return f"{exc.__class__.__name__}: {' '.join(str(exc).split())}"[:300]

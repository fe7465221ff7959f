"""The controller's worker: one greenlet that applies what is queued for it (``messages``)
in batches and writes each batch in one transaction.

Events come from the node readers, which must never wait (FreeSWITCH drops a listener
that falls 500 events behind), so everything that writes or decides is done here, in
arrival order.  A batch is drained from the queue (up to ``batch_size`` messages); each
message is applied on its own (one that raises is logged and skipped, the rest go on) and
adds to the batch's status changes and log entries (:class:`Batch`); then the batch is
committed, with the transaction hooks (the webhook outbox, billing) inside the same
transaction; then the calls' committed statuses move (``LiveCalls.committed``) and the
listeners run.

Who handles what: log entries, failed originates, flushes and the stop are the worker's
own; the controller routes the rest to its parts (:meth:`EventWorker.route`).
"""

from __future__ import annotations

import logging
from datetime import datetime, timezone
from typing import Callable

import gevent
from gevent.event import AsyncResult
from gevent.queue import Empty, Queue
from peewee import IntegrityError, InterfaceError, OperationalError

from gateway.calls import store
from gateway.calls.live import LiveCall, LiveCalls
from gateway.calls.messages import Flush, LogEntry, NodeEvent, OriginateFailed, Stop
from gateway.calls.states import Transition, originate_failed
from gateway.greenlets import GreenletOwner
from gateway.models import utcnow

logger = logging.getLogger(__name__)

Listener = Callable[[str, Transition], None]


class Batch:
    """What the messages of one batch changed, written together."""

    __slots__ = ("changes", "logs", "flushed")

    def __init__(self) -> None:
        self.changes: list[store.Change] = []
        self.logs: list[dict] = []
        self.flushed: list[AsyncResult] = []

    def move(self, live: LiveCall, transition: Transition | None) -> None:
        """``live`` takes ``transition`` (nothing if None)."""
        if transition is not None:
            self.changes.append(live.move(transition))

    def log(self, live: LiveCall, kind: str, detail: dict) -> None:
        seq, at = live.stamp(utcnow())
        self.logs.append(store.log_entry(live.uuid, seq, kind, detail, live.status.value, at))


class EventWorker:
    """``transaction_hooks(changes)`` and ``log_hooks(entries)`` run inside the batch's
    transaction (DB writes only: an exception rolls the batch back); ``listeners(call_uuid,
    transition)`` after the commit, on the worker, so they must not block."""

    def __init__(self, calls: LiveCalls, transaction_hooks: list, log_hooks: list, listeners: list[Listener],
                 batch_size: int = 500) -> None:
        self.calls = calls
        self.transaction_hooks = transaction_hooks
        self.log_hooks = log_hooks
        self.listeners = listeners
        self.batch_size = batch_size
        self._inbox: Queue = Queue()
        self._handlers: dict[type, Callable[[object, Batch], None]] = {
            LogEntry: self._log, OriginateFailed: self._originate_failed,
            Flush: lambda message, batch: batch.flushed.append(message.done),
        }
        self._greenlets = GreenletOwner("call controller worker")

    def route(self, message_type: type, handler: Callable[[object, Batch], None]) -> None:
        """Have ``handler(message, batch)`` apply each queued ``message_type``."""
        self._handlers[message_type] = handler

    def submit(self, message) -> None:
        """Queue ``message`` (any greenlet, never blocks)."""
        self._inbox.put(message)

    def flush(self, timeout: float = 5.0) -> None:
        """Return once everything queued so far is committed."""
        done: AsyncResult = AsyncResult()
        self._inbox.put(Flush(done))
        done.get(timeout=timeout)

    def start(self) -> None:
        self._greenlets.spawn(self._work)

    def stop(self, timeout: float = 5.0) -> None:
        """Write what is queued, for up to ``timeout`` seconds: killing the worker
        mid-transaction would leave a pooled connection holding row locks."""
        self._inbox.put(Stop())
        self._greenlets.stop(timeout)

    # -- the greenlet ----------------------------------------------------------------------
    def _work(self) -> None:
        inbox = self._inbox
        with store.database.connection_context():
            stopping = False
            while not stopping:
                messages = [inbox.get()]
                try:
                    while len(messages) < self.batch_size:
                        messages.append(inbox.get_nowait())
                except Empty:
                    pass
                if any(isinstance(message, Stop) for message in messages):
                    stopping = True
                    messages = [message for message in messages if not isinstance(message, Stop)]
                try:
                    self._process(messages)
                except Exception:  # a bad batch must not stop the controller
                    logger.exception("call controller failed to process %d items", len(messages))

    def _process(self, messages: list) -> None:
        batch = Batch()
        handlers = self._handlers
        for message in messages:
            try:
                handlers[type(message)](message, batch)
            except Exception:
                shown = f": {message.event.raw[:200]!r}" if isinstance(message, NodeEvent) else ""
                logger.exception("call controller: skipped a %s it could not apply%s", type(message).__name__, shown)
        self._write(batch.changes, batch.logs)
        for done in batch.flushed:
            done.set()
        for call_uuid, _, _, transition in batch.changes:
            self.calls.committed(call_uuid, transition.to_status)
            for listener in self.listeners:
                try:
                    listener(call_uuid, transition)
                except Exception:
                    logger.exception("call listener failed")

    # -- the worker's own messages --------------------------------------------------------
    def _log(self, message: LogEntry, batch: Batch) -> None:
        live = self.calls.get(message.call_uuid)
        if live is not None:
            batch.log(live, message.kind, message.detail)
        else:
            _log_unowned(message.call_uuid, message.kind, message.detail)

    def _originate_failed(self, message: OriginateFailed, batch: Batch) -> None:
        live = self.calls.get(message.call_uuid)
        if live is not None:
            batch.move(live, originate_failed(live.view(), message.body, datetime.now(timezone.utc)))

    # -- writing ----------------------------------------------------------------------------
    def _write(self, changes: list, logs: list, attempts: int = 8) -> None:
        """Commit a batch in one transaction, retrying while the database is unavailable
        (events keep queueing meanwhile).

        Any other failure means something in the batch is bad (a value the database
        refuses, a transaction hook that fails on one call): the batch is then written
        call by call, so that only the calls whose writes fail are lost. The in-memory
        state has already moved on, so giving up is the last resort, and loud."""
        def commit(batch_changes: list, batch_logs: list) -> None:
            store.apply(batch_changes, batch_logs, self.transaction_hooks, self.log_hooks)

        for attempt in range(attempts):
            try:
                commit(changes, logs)
                return
            except (OperationalError, InterfaceError):
                logger.exception("writing %d call changes failed (attempt %d)", len(changes), attempt + 1)
                gevent.sleep(min(0.1 * 2 ** attempt, 5.0))
            except Exception:
                logger.exception("writing %d call changes failed; writing them call by call", len(changes))
                break
        by_call: dict[str, tuple[list, list]] = {}
        for change in changes:
            by_call.setdefault(change[0], ([], []))[0].append(change)
        for entry in logs:
            by_call.setdefault(entry["call"], ([], []))[1].append(entry)
        dropped = []
        for call_uuid, (call_changes, call_logs) in by_call.items():
            try:
                commit(call_changes, call_logs)
            except Exception as exc:
                if not dropped:
                    logger.exception("writing the changes of call %s failed", call_uuid)
                dropped.append((call_uuid, [t.to_status.value for _, _, _, t in call_changes],
                                len(call_logs), exc.__class__.__name__))
        if dropped:
            logger.critical("dropped the changes of %d of %d calls (uuid, statuses, log entries, error): %s",
                            len(dropped), len(by_call), dropped)


def _log_unowned(call_uuid: str, kind: str, detail: dict) -> None:
    """A log entry for a call that is not live here (ended, or another process's)."""
    for _ in range(3):
        try:
            store.apply([], [store.log_entry(call_uuid, store.next_seq(call_uuid), kind, detail)])
            return
        except IntegrityError:
            continue  # another process logged at the same seq; take the next one

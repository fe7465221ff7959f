"""Waiting for a call: for one of its events (``expect``, ``wait_event``) or for a status
(``wait_status``), from any greenlet (scripts, the media sessions, the demo, tests).

An event waiter is woken by :meth:`Waiters.wake`, the first of the controller's event
hooks, on the worker in arrival order; a status waiter by the call's ``changed`` flag,
which the worker sets only once the status is committed.
"""

from __future__ import annotations

from typing import Callable, Iterable

import gevent
from gevent.event import AsyncResult

from gateway.calls.errors import CallError
from gateway.calls.live import LiveCalls
from gateway.calls.states import FINAL, Status
from gateway.esl.protocol import Event
from gateway.models import Call

Predicate = Callable[[Event], bool]


class Waiters:
    def __init__(self, calls: LiveCalls) -> None:
        self.calls = calls
        self._waiting: dict[str, list[tuple[Predicate, AsyncResult]]] = {}

    def expect(self, call_uuid: str, predicate: Predicate) -> AsyncResult:
        """An ``AsyncResult`` set with the first later event of the call matching
        ``predicate``, or with ``CallError`` if the call ends first."""
        result: AsyncResult = AsyncResult()
        self._waiting.setdefault(call_uuid, []).append((predicate, result))
        return result

    def wait_event(self, call_uuid: str, predicate: Predicate, timeout: float) -> Event:
        """Block this greenlet until an event of the call satisfies ``predicate``.

        Register before causing the event (e.g. ``waiter = controller.expect(...)``) when
        it may come fast; this helper registers and waits in one go for the common case."""
        return self.expect(call_uuid, predicate).get(timeout=timeout)

    def wake(self, call_uuid: str, event: Event) -> None:
        """An event hook: settle the call's waiters that ``event`` answers."""
        waiters = self._waiting.get(call_uuid)
        if not waiters:
            return
        pending = []
        for predicate, result in waiters:
            if result.ready():
                continue
            try:
                matched = predicate(event)
            except Exception as exc:  # a broken predicate fails its own waiter only
                result.set_exception(exc)
                continue
            if matched:
                result.set(event)
            elif event.name == "CHANNEL_HANGUP_COMPLETE":
                result.set_exception(CallError("the call ended", code=409))
            else:
                pending.append((predicate, result))
        if pending:
            self._waiting[call_uuid] = pending
        else:
            del self._waiting[call_uuid]

    def wait_status(self, call_uuid: str, statuses: Iterable[Status | str], timeout: float) -> Status:
        """Block this greenlet until the call reaches one of ``statuses`` (or a final one,
        for a call another process placed)."""
        wanted = {Status(s) for s in statuses}
        calls = self.calls
        with gevent.Timeout(timeout, CallError(f"call {call_uuid} did not reach {sorted(wanted)} in {timeout}s", 504)):
            while True:
                live = calls.live.get(call_uuid)
                if live is None:
                    ended = calls.recently_ended.get(call_uuid)
                    if ended is not None:
                        return ended
                    status = Status(Call.get_by_id(call_uuid).status)
                    if status in wanted or status in FINAL:
                        return status
                    gevent.sleep(0.01)  # not ours yet (placed by another process): poll the row
                    continue
                if live.committed in wanted:
                    return live.committed
                live.changed.clear()
                live.changed.wait()

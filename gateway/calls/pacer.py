"""One greenlet per FreeSWITCH node that starts the calls waiting in its ``Admission``.

Calls are placed from anywhere (API requests, playback scripts, campaign runs) and only
join the line; this greenlet alone decides when each is started, so every surface is
paced by the same budget.  It starts nothing while the node is not connected: a node
counts as connected once the switch's globals (the carrier trunk name) and its session
limits have been read on that link (``Node``), and the budget takes the limits of the
link at hand.
"""

from __future__ import annotations

import logging
import time
from typing import Callable

import gevent
from gevent.event import Event as Flag

from gateway.calls.admission import Admission, Ticket
from gateway.esl.node import Node
from gateway.greenlets import GreenletOwner

logger = logging.getLogger(__name__)


class NodePacer:
    """``start(ticket)`` sends a call's originate; ``give_up(ticket, reason)`` fails a call
    that could not be started within the wait (it must not block).

    Each ``start`` runs in a greenlet of its own, spawned in line order: it writes its
    command before it first yields, so the commands leave in that order, and the replies
    of a burst are awaited together rather than one round trip after another."""

    def __init__(self, node: Node, wait: float, start: Callable[[Ticket], None],
                 give_up: Callable[[Ticket, str], None]) -> None:
        self.node = node
        self.admission = Admission(node.limits, wait)
        self._start = start
        self._give_up = give_up
        self._wake = Flag()
        self._generation: int | None = None
        self._greenlet: gevent.Greenlet | None = None
        self._starting = GreenletOwner(f"call starts on FreeSWITCH {node.name}")

    def start(self) -> None:
        self._greenlet = gevent.spawn(self._run)

    def stop(self, grace: float = 5.0) -> list[Ticket]:
        """Stop starting calls (the originates being sent get ``grace`` seconds for their
        replies); returns the calls still waiting, which never will start."""
        if self._greenlet is not None:
            self._greenlet.kill()
            self._greenlet = None
        self._starting.stop(grace)
        return self.admission.drain()

    # -- from other greenlets --------------------------------------------------------------
    def submit(self, call_uuid: str, order: object) -> None:
        self.admission.enqueue(call_uuid, time.monotonic(), order)
        self._wake.set()

    def refused(self, call_uuid: str) -> Ticket | None:
        ticket = self.admission.refused(call_uuid, time.monotonic())
        if ticket is not None:
            logger.info("FreeSWITCH %s refused to start call %s (%d time(s)); it waits for the next second",
                        self.node.name, call_uuid, ticket.refusals)
            self._wake.set()
        return ticket

    def cancel(self, call_uuid: str) -> bool:
        return self.admission.cancel(call_uuid) is not None

    def waiting(self, call_uuid: str) -> bool:
        return self.admission.waiting(call_uuid)

    def hold(self, call_uuid: str) -> None:
        self.admission.hold(call_uuid)

    def release(self, call_uuid: str) -> None:
        self.admission.release(call_uuid)
        self._wake.set()

    # -- the greenlet ----------------------------------------------------------------------
    def _run(self) -> None:
        node, admission = self.node, self.admission
        while True:
            self._wake.clear()
            connected = node.connected.is_set()
            if connected and node.generation != self._generation:
                self._generation = node.generation
                admission.limits = node.limits
            now = time.monotonic()
            to_start, given_up = admission.due(now, may_start=connected)
            for ticket in given_up:
                try:
                    self._give_up(ticket, self._reason(ticket, connected, now))
                except Exception:  # one call's trouble must not stop the node's line
                    logger.exception("FreeSWITCH %s: giving up call %s failed", self.node.name, ticket.call_uuid)
            for ticket in to_start:
                self._starting.spawn(self._start, ticket)
            due = admission.next_due(now, may_start=connected)
            waits = [self._wake] if connected else [self._wake, node.connected]
            gevent.wait(waits, timeout=None if due is None else max(0.0, due - time.monotonic()), count=1)

    def _reason(self, ticket: Ticket, connected: bool, now: float) -> str:
        waited = f"not started within {self.admission.wait:g} s"
        if not connected:
            return f"{waited}: FreeSWITCH node {self.node.name} was not connected ({self.node.last_error or 'no link'})"
        if ticket.refusals:
            return (f"{waited}: FreeSWITCH node {self.node.name} refused to start it {ticket.refusals} time(s) "
                    f"(DESTINATION_OUT_OF_ORDER: at its sessions-per-second or max-sessions limit)")
        return f"{waited} on FreeSWITCH node {self.node.name}: {self.admission.holdup(now)}"

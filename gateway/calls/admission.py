"""Admission control, without IO: when a call may be started on a FreeSWITCH node.

FreeSWITCH refuses a new session when its per-second budget or its session limit is
used up (src/switch_core_session.c ``switch_core_session_request_uuid``; the budget is
refilled once a second by the timer thread in src/switch_time.c), and the originate
then fails at once with ``-ERR DESTINATION_OUT_OF_ORDER`` and no channel (mod_sofia's
``sofia_outgoing_channel`` default cause).  Calls sent as they come fail that way in a
burst: 71 of 100 on a real 1.10.12 with the shipped ``sessions-per-second=30``.  So
calls wait here, in the order they were placed, until the node can take them:

* starts: at most ``rate`` in any ``WINDOW``.  FreeSWITCH starts at most
  ``sessions-per-second - 1`` sessions a second (it refuses once the budget, less the
  request, is down to 0), on its own clock, whose phase we cannot know; a sliding window
  over our own sends keeps each of its seconds under the limit whatever the phase.  The
  window is a second plus a margin for the jitter between our send and its receipt.
* sessions: at most ``ceiling`` at once, counting the calls we started and the inbound
  calls we hold, until they end.
* headroom: both stay a tenth (at least one) under the switch's limit, for what we do
  not see: inbound calls being set up, other ESL clients.

A refusal all the same (the switch's limits lowered since we read them, traffic we do
not see) puts the call back at its place in the line and holds every start for a
``WINDOW``, by which time the switch has refilled its budget.  A call still waiting
``wait`` seconds after it was placed is given up.

Times are passed in (``time.monotonic()`` seconds); nothing here reads a clock.
"""

from __future__ import annotations

import itertools
import math
from collections import deque
from dataclasses import dataclass

from gateway.esl.limits import SwitchLimits

WINDOW = 1.05
HEADROOM = 0.1
#: What a ``bgapi originate`` job answers when the switch would not create the session.
#: The same text comes from a few misconfigurations (an unknown transport on a gateway),
#: which the bounded wait turns into a failed call in the end.
SESSION_REFUSED = "-ERR DESTINATION_OUT_OF_ORDER"


def usable(limit: int) -> int:
    """``limit`` less the headroom, never below one."""
    return max(1, limit - max(1, math.ceil(limit * HEADROOM)))


@dataclass(slots=True, eq=False)
class Ticket:
    """A call waiting for its turn (or started, until it ends); ``order`` is whatever the
    caller needs to start it."""

    call_uuid: str
    seq: int
    deadline: float
    order: object = None
    refusals: int = 0


class Admission:
    """The line of calls waiting to start on one node, and the node's budget."""

    def __init__(self, limits: SwitchLimits, wait: float) -> None:
        self.wait = wait
        self.limits = limits
        self._line: deque[Ticket] = deque()
        self._waiting: dict[str, Ticket] = {}
        self._started: dict[str, Ticket] = {}  # until the call ends: a refusal puts it back
        self._sessions: set[str] = set()
        self._starts: deque[float] = deque()
        self._paused_until = -math.inf
        self._seq = itertools.count()

    @property
    def limits(self) -> SwitchLimits:
        return self._limits

    @limits.setter
    def limits(self, limits: SwitchLimits) -> None:
        self._limits = limits
        self.rate = usable(limits.sessions_per_second - 1)
        self.ceiling = usable(limits.max_sessions)

    # -- the line --------------------------------------------------------------------------
    def enqueue(self, call_uuid: str, now: float, order: object = None) -> Ticket:
        ticket = Ticket(call_uuid, next(self._seq), now + self.wait, order)
        self._line.append(ticket)
        self._waiting[call_uuid] = ticket
        return ticket

    def waiting(self, call_uuid: str) -> bool:
        return call_uuid in self._waiting

    def __len__(self) -> int:
        return len(self._line)

    def cancel(self, call_uuid: str) -> Ticket | None:
        """Take a waiting call out of the line (it will not be started)."""
        ticket = self._waiting.pop(call_uuid, None)
        if ticket is not None:
            self._line.remove(ticket)
        return ticket

    def drain(self) -> list[Ticket]:
        """Empty the line (nothing more will be started), in order."""
        tickets = list(self._line)
        self._line.clear()
        self._waiting.clear()
        return tickets

    def refused(self, call_uuid: str, now: float) -> Ticket | None:
        """The switch refused to create the session of a call we started: back to its
        place in the line (ahead of every call placed after it), and no start for a
        window.  None if we did not start that call."""
        ticket = self._started.pop(call_uuid, None)
        if ticket is None:
            return None
        self._sessions.discard(call_uuid)
        ticket.refusals += 1
        self._paused_until = max(self._paused_until, now + WINDOW)
        index = 0
        while index < len(self._line) and self._line[index].seq < ticket.seq:
            index += 1
        self._line.insert(index, ticket)
        self._waiting[call_uuid] = ticket
        return ticket

    # -- sessions --------------------------------------------------------------------------
    def hold(self, call_uuid: str) -> None:
        """A session we did not start (an inbound call) is up on the node."""
        self._sessions.add(call_uuid)

    def release(self, call_uuid: str) -> None:
        """The call ended: its session is free."""
        self._sessions.discard(call_uuid)
        self._started.pop(call_uuid, None)

    @property
    def sessions(self) -> int:
        return len(self._sessions)

    # -- time ------------------------------------------------------------------------------
    def due(self, now: float, may_start: bool = True) -> tuple[list[Ticket], list[Ticket]]:
        """``(to start now, given up)``; both leave the line.  The line is in placing
        order and every call waits the same time, so the calls past their deadline are
        always at its head."""
        given_up = []
        while self._line and self._line[0].deadline <= now:
            ticket = self._line.popleft()
            del self._waiting[ticket.call_uuid]
            given_up.append(ticket)
        to_start = []
        while may_start and self._line and self._can_start(now):
            ticket = self._line.popleft()
            del self._waiting[ticket.call_uuid]
            self._starts.append(now)
            self._sessions.add(ticket.call_uuid)
            self._started[ticket.call_uuid] = ticket
            to_start.append(ticket)
        return to_start, given_up

    def next_due(self, now: float, may_start: bool = True) -> float | None:
        """When ``due`` may have something, if nothing else happens meanwhile (a session
        released, a call placed); None: not until then."""
        if not self._line:
            return None
        times = [self._line[0].deadline]
        if may_start and self.sessions < self.ceiling:
            self._forget_old_starts(now)
            start_at = max(now, self._paused_until)
            if len(self._starts) >= self.rate:
                start_at = max(start_at, self._starts[-self.rate] + WINDOW)
            times.append(start_at)
        return min(times)

    def holdup(self, now: float) -> str:
        """Why the head of the line is waiting, in words."""
        if now < self._paused_until:
            return "FreeSWITCH refused to start a session a moment ago"
        if self.sessions >= self.ceiling:
            return f"{self.sessions} sessions up, the most this gateway starts on it ({self.limits})"
        return f"calls ahead of it were starting at the {self.rate} per second it allows ({self.limits})"

    def _can_start(self, now: float) -> bool:
        if now < self._paused_until or self.sessions >= self.ceiling:
            return False
        self._forget_old_starts(now)
        return len(self._starts) < self.rate

    def _forget_old_starts(self, now: float) -> None:
        while self._starts and self._starts[0] + WINDOW <= now:
            self._starts.popleft()

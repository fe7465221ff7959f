"""One clock for every call's playout: a single greenlet runs each stream when it is due.

A greenlet per call waking once per 20 ms frame costs a switch and a timer per call per
frame.  Here each stream says when it next needs to run (``at``) or that it needs to run
as soon as the current greenlet yields (``soon``: new bot audio, a clear, an ESL event);
the clock's greenlet runs those, in order of their time, and sleeps until the earliest
next one.  A stream runs at most once per turn however many times it was poked, so a
burst of bot messages read in one go is handed over in one send.

Due times are rounded up to ``QUANTUM`` so that streams due within the same millisecond
run in one wakeup; the playout hands audio ``lead`` (100 ms) ahead, so a millisecond
late is nothing the caller can hear.  A turn does not yield: each run is bounded (a
poll hands at most ``lead`` of audio), and yielding mid-turn was measured to cost the
streams left in it tens of milliseconds at 100 calls.  A stream's ``run`` must not block (the bridge's
sends to FreeSWITCH never do: ``bridge.FsSocket``) and must not raise; an exception is
logged, and the clock goes on with the other streams.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import math
import time
from typing import Protocol

import gevent
from gevent.event import Event as Flag

logger = logging.getLogger(__name__)

QUANTUM = 0.001


class Scheduled(Protocol):
    def run(self, now: float) -> float | None:
        """Do what is due at ``now``; return when to run next (None: only when poked)."""


class Clock:
    def __init__(self) -> None:
        self._heap: list[tuple[float, int, Scheduled]] = []
        self._due: dict[Scheduled, float] = {}  # the live entry of each stream
        self._soon: dict[Scheduled, None] = {}  # ordered set
        self._order = itertools.count()
        self._flag = Flag()
        self._greenlet: gevent.Greenlet | None = None
        self._running = False  # in a turn: what is poked or moved then is seen at its end
        self.turns = 0

    def soon(self, stream: Scheduled) -> None:
        self._soon[stream] = None
        self._wake()

    def at(self, stream: Scheduled, when: float | None) -> None:
        """Run ``stream`` at ``when`` (replacing its earlier time; None: forget it)."""
        if when is None:
            self._due.pop(stream, None)
            return
        when = math.ceil(when / QUANTUM) * QUANTUM if math.isfinite(when) else time.monotonic()
        if self._due.get(stream) == when:
            return
        self._due[stream] = when
        heapq.heappush(self._heap, (when, next(self._order), stream))
        if self._heap[0][2] is stream:
            self._wake()

    def forget(self, stream: Scheduled) -> None:
        self._due.pop(stream, None)
        self._soon.pop(stream, None)

    def stop(self) -> None:
        if self._greenlet is not None:
            self._greenlet.kill(block=False)
            self._greenlet = None

    def _wake(self) -> None:
        if self._greenlet is None:
            self._greenlet = gevent.spawn(self._loop)
        if not self._running:
            self._flag.set()

    def _loop(self) -> None:
        while True:
            self._flag.clear()
            now = time.monotonic()
            batch = list(self._soon)
            self._soon.clear()
            heap, due = self._heap, self._due
            while heap and heap[0][0] <= now:
                when, _, stream = heapq.heappop(heap)
                if due.get(stream) == when:
                    del due[stream]
                    batch.append(stream)
            ran: set[int] = set()
            self._running = True
            try:
                for stream in batch:
                    if id(stream) in ran:
                        continue
                    ran.add(id(stream))
                    due.pop(stream, None)
                    try:
                        self.at(stream, stream.run(now))
                    except Exception:
                        logger.exception("media clock: %r failed", stream)
            finally:
                self._running = False
            self.turns += 1
            if self._soon:
                gevent.sleep(0)  # poked while running: another turn after the others had theirs
                continue
            while heap and due.get(heap[0][2]) != heap[0][0]:
                heapq.heappop(heap)  # entries replaced or forgotten
            timeout = max(0.0, heap[0][0] - time.monotonic()) if heap else None
            self._flag.wait(timeout)

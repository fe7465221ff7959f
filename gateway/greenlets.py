"""Greenlets with an owner: whatever a component starts, stopping the component stops.

A greenlet nobody holds outlives the component that started it.  In a process that is
shutting down that is worse than untidy: one that still holds a pooled PostgreSQL
connection when the pool is closed makes ``close_all()`` block on the connection's lock,
and nothing (not even pytest-timeout) can interrupt that.  So every component that
spawns work spawns it through a ``GreenletOwner`` and stops it in ``stop()``:

* first it lets the running greenlets finish, for a grace period: a greenlet killed in
  the middle of a transaction would leave its row locks and its connection behind;
* then it kills what is left, and waits until each has really ended (``GreenletExit``
  runs their ``finally`` blocks, which give connections back);
* from then on it starts nothing: a late callback gets a logged refusal, not a greenlet
  that nobody will stop.
"""

from __future__ import annotations

import logging
from typing import Callable

import gevent
from gevent.pool import Group

logger = logging.getLogger(__name__)


class GreenletOwner:
    def __init__(self, name: str) -> None:
        self.name = name
        self._group = Group()
        self.closed = False

    def __len__(self) -> int:
        return len(self._group)

    def spawn(self, fn: Callable, *args) -> gevent.Greenlet | None:
        """Run ``fn(*args)`` in a greenlet of ours; a failure is logged here, never
        printed by the hub.  None once stopped."""
        if self.closed:
            logger.warning("%s is stopped: %s not started", self.name, _name(fn))
            return None
        return self._group.spawn(self._run, fn, args)

    def spawn_later(self, seconds: float, fn: Callable, *args) -> gevent.Greenlet | None:
        """``spawn`` after ``seconds``; stopping the owner cancels it."""
        if self.closed:
            return None
        greenlet = gevent.spawn_later(seconds, self._run, fn, args)
        self._group.add(greenlet)
        return greenlet

    def _run(self, fn: Callable, args: tuple) -> None:
        try:
            fn(*args)
        except Exception:
            logger.exception("%s: %s failed", self.name, _name(fn))

    def join(self, timeout: float | None = None) -> bool:
        """Wait until every greenlet has ended; False if some still run after ``timeout``."""
        return self._group.join(timeout=timeout)

    def stop(self, grace: float = 5.0) -> None:
        """Let running work end for up to ``grace`` seconds, then kill the rest and wait
        for it to have ended; start nothing afterwards."""
        self.closed = True
        if not self._group.join(timeout=grace):
            logger.warning("%s: %d greenlet(s) still running after %.1f s; killing them",
                           self.name, len(self._group), grace)
        self._group.kill(block=True, timeout=grace)
        if len(self._group):
            logger.error("%s: %d greenlet(s) would not die", self.name, len(self._group))


def _name(fn: Callable) -> str:
    return getattr(fn, "__qualname__", None) or repr(fn)

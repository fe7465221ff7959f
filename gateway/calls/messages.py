"""What the controller's worker is sent (``EventWorker.submit``): one frozen dataclass
per kind of work, applied in the order they were queued."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from gevent.event import AsyncResult

from gateway.esl.node import Node
from gateway.esl.protocol import Event


@dataclass(frozen=True, slots=True)
class NodeEvent:
    """An ESL event, as the node's reader received it."""

    node: Node
    event: Event


@dataclass(frozen=True, slots=True)
class LinkUp:
    """The node connected (link ``generation``); queued before the subscription is sent,
    so it is ahead of every event of that link."""

    node: Node
    generation: int


@dataclass(frozen=True, slots=True)
class LogEntry:
    """An entry for the call's log (a command sent, a media event, a transfer's outcome)."""

    call_uuid: str
    kind: str
    detail: dict


@dataclass(frozen=True, slots=True)
class OriginateFailed:
    """The call never got a channel: FreeSWITCH refused its originate (``body`` is the
    ``-ERR <cause>`` it would have answered), or it never was sent."""

    call_uuid: str
    body: str


@dataclass(frozen=True, slots=True)
class Vanished:
    """Calls of a node whose channels were gone at its reconciliation (``LiveCall`` and
    ``Call`` row each), to be closed at ``now`` unless their own events did it first."""

    calls: tuple
    now: datetime


@dataclass(frozen=True, slots=True)
class Flush:
    """Set ``done`` once everything queued before it is committed."""

    done: AsyncResult


@dataclass(frozen=True, slots=True)
class Stop:
    """Write what is queued, then end the worker."""

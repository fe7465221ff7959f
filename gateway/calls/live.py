"""The controller's memory of the calls of this process that can still change.

Only the worker moves a call (:meth:`LiveCall.move`), and only after a batch is committed
does a call's ``committed`` status change (:meth:`LiveCalls.committed`): that is the
status waiters see, so nobody acts on a change the database does not have yet.
"""

from __future__ import annotations

import dataclasses
from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import datetime

from gevent.event import Event as Flag

from gateway.calls.states import FINAL, CallView, Status, Transition
from gateway.calls.store import Change

#: How many ended calls keep their final status in memory (spares waiters a DB read).
RECENTLY_ENDED = 10_000


@dataclass(slots=True)
class LiveCall:
    """A call that can still change."""

    uuid: str
    node: str
    status: Status = Status.QUEUED  # as the worker has decided it
    committed: Status = Status.QUEUED  # as the database has it: what waiters see
    answered: bool = False
    rang: bool = False
    channel_seen: bool = False
    job_uuid: str | None = None
    generation: int = 0  # the node's link generation the originate was sent on
    seq: int = 0
    last_at: datetime | None = None  # the ``at`` of the latest log entry
    changed: Flag = field(default_factory=Flag)

    def view(self) -> CallView:
        return CallView(self.status, self.answered, self.rang)

    def stamp(self, at: datetime) -> tuple[int, datetime]:
        """The next log entry's ``seq`` and ``at``.  Status entries carry FreeSWITCH's event
        time, other entries the gateway's clock, so ``at`` could run against ``seq`` (a
        hangup command logged a millisecond after the switch stamped the hangup it
        caused); ``at`` never goes back, so the two orders agree."""
        self.seq += 1
        if self.last_at is not None and at < self.last_at:
            at = self.last_at
        self.last_at = at
        return self.seq, at

    def move(self, transition: Transition) -> Change:
        """Take ``transition`` (the worker decided it); returns the change to write."""
        seq, at = self.stamp(transition.at)
        change = (self.uuid, self.status.value, seq, dataclasses.replace(transition, at=at))
        self.status = transition.to_status
        if transition.to_status is Status.RINGING:
            self.rang = True
        elif transition.to_status is Status.IN_PROGRESS:
            self.answered = True
        return change


class LiveCalls:
    """Live calls by uuid (``live``) and by the Job-UUID of their originate (``jobs``),
    and the final status of the calls that ended lately (``recently_ended``)."""

    def __init__(self) -> None:
        self.live: dict[str, LiveCall] = {}
        self.jobs: dict[str, str] = {}  # originate Job-UUID → call uuid
        self.recently_ended: OrderedDict[str, Status] = OrderedDict()

    def get(self, call_uuid: str) -> LiveCall | None:
        return self.live.get(call_uuid)

    def add(self, live: LiveCall) -> LiveCall:
        self.live[live.uuid] = live
        if live.job_uuid:
            self.jobs[live.job_uuid] = live.uuid
        return live

    def forget(self, call_uuid: str, job_uuid: str) -> None:
        self.live.pop(call_uuid, None)
        self.jobs.pop(job_uuid, None)

    def by_job(self, job_uuid: str) -> LiveCall | None:
        call_uuid = self.jobs.get(job_uuid)
        return self.live.get(call_uuid) if call_uuid is not None else None

    def committed(self, call_uuid: str, status: Status) -> None:
        """The database has the call at ``status`` now: wake who waits for it; a final
        status retires the call."""
        live = self.live.get(call_uuid)
        if live is None:
            return
        live.committed = status
        live.changed.set()
        if status in FINAL:
            del self.live[call_uuid]
            self.recently_ended[call_uuid] = status
            if len(self.recently_ended) > RECENTLY_ENDED:
                self.recently_ended.popitem(last=False)
            if live.job_uuid:
                self.jobs.pop(live.job_uuid, None)

"""Reconciliation: after every (re)connect, the calls of a node are brought in line with
what FreeSWITCH reports (``show channels as json``), so that nothing stays "in progress"
for ever and nothing FreeSWITCH did while nobody listened is lost.

* A call whose channel is still listed but was not known answered is asked about with
  ``uuid_dump`` (:func:`found_on_reconnect`): an answer FreeSWITCH recorded while we were
  away becomes the call's ``in_progress`` transition, at FreeSWITCH's answer time, and
  goes to the listeners (media session, webhooks) like any answer.
* A call already known answered goes to ``Handback.reattached`` (its bot back, unless it
  is in a transfer).
* A call whose channel is not listed is closed (:class:`~gateway.calls.messages.Vanished`,
  queued behind the events already received: a channel that just hung up still gets its
  real CHANNEL_HANGUP_COMPLETE applied first; only the silent ones are closed, with what
  ``states.channel_vanished`` can know: end times that are upper bounds).

It all runs on the worker, ahead of every event of the new link (the node queues
``LinkUp`` before it sends the subscription), so a call is re-attached before its events
are applied and none of them is dropped as unknown.
"""

from __future__ import annotations

import json
import logging
from datetime import datetime, timezone
from typing import Callable

from gateway.calls import states, store
from gateway.calls.handback import Handback
from gateway.calls.live import LiveCall, LiveCalls
from gateway.calls.messages import LinkUp, Vanished
from gateway.calls.pacer import NodePacer
from gateway.calls.states import FINAL, LIVE, Status, Transition
from gateway.calls.worker import Batch
from gateway.esl import commands
from gateway.esl.connection import CommandFailed, CommandTimeout, LinkDown
from gateway.esl.node import Node
from gateway.esl.protocol import Event, ProtocolError
from gateway.models import Call

logger = logging.getLogger(__name__)

# ``show channels``' callstate of an answered channel (``switch_channel_callstate_t``:
# HELD and UNHELD come only after ACTIVE).
ANSWERED_CALLSTATES = frozenset({"ACTIVE", "HELD", "UNHELD"})


class Reconciler:
    """``submit`` queues a message for the worker (``EventWorker.submit``)."""

    def __init__(self, calls: LiveCalls, pacers: dict[str, NodePacer], handback: Handback,
                 submit: Callable[[object], None]) -> None:
        self.calls = calls
        self.pacers = pacers
        self.handback = handback
        self.submit = submit

    def link_up(self, message: LinkUp, batch: Batch) -> None:
        """Reconcile the node of ``message``; see the module docstring."""
        node, generation = message.node, message.generation
        if not node.wait_connected(node.command_timeout) or node.generation != generation:
            return  # this link died already; the next one brings its own reconciliation
        try:
            reply = node.api(commands.SHOW_CHANNELS)
        except (LinkDown, CommandTimeout, CommandFailed) as exc:
            logger.warning("reconcile %s: %s", node.name, exc)
            return
        channels = {row.get("uuid"): row for row in json.loads(reply).get("rows", [])}
        now = datetime.now(timezone.utc)
        gone: list[tuple[LiveCall, Call]] = []
        rows = Call.select().where(Call.node == node.name, Call.status.in_([s.value for s in LIVE]))
        for call in rows:
            live = self.calls.get(call.uuid)
            if live is not None and live.generation == generation:
                continue  # originated on this very link: its events are already flowing
            if self.pacers[node.name].waiting(call.uuid):
                continue  # still in line for admission: never sent
            if live is None:
                if call.status == Status.QUEUED.value and call.job_uuid is None:
                    continue  # never sent; the process that queued it will place it
                live = self.calls.add(LiveCall(
                    call.uuid, node.name, Status(call.status), Status(call.status),
                    answered=call.answered_at is not None, rang=call.ringing_at is not None,
                    channel_seen=True, seq=store.next_seq(call.uuid) - 1))
            live.generation = generation
            row = channels.get(call.uuid)
            if row is None:
                gone.append((live, call))
                continue
            live.channel_seen = True
            if live.status is Status.IN_PROGRESS:
                # Nothing its status can have done unseen but end, and then it would be gone;
                # but nobody here may be serving it (a new process): ``handback`` sees to it.
                self.handback.reattached(call.uuid, row)
                continue
            batch.move(live, found_on_reconnect(node, live, row, now))
        if gone:
            self.submit(Vanished(tuple(gone), now))

    def close_vanished(self, message: Vanished, batch: Batch) -> None:
        """Close the calls whose channels were gone, unless they ended meanwhile."""
        for live, call in message.calls:
            try:
                if self.calls.get(live.uuid) is live and live.status not in FINAL:
                    batch.move(live, states.channel_vanished(live.view(), call.created_at, call.answered_at,
                                                             message.now))
            except Exception:
                logger.exception("call controller: could not close vanished call %s", live.uuid)


def found_on_reconnect(node: Node, live: LiveCall, row: dict, now: datetime) -> Transition | None:
    """What a call still on FreeSWITCH did while we were not listening: answered (at the
    time FreeSWITCH recorded), started ringing, or nothing (``states.found_on_reconnect``).

    The times come from ``uuid_dump``.  If FreeSWITCH cannot dump the channel
    (``-ERR Allocation error``, a timeout), ``show channels``' call state still tells an
    answered call, which then gets the reconcile time, the latest it can have been
    answered.  A channel that hung up since ``show channels`` did so while this link
    listened (the subscription precedes ``connected``): its own CHANNEL_HANGUP_COMPLETE
    is on the way and ends the call with FreeSWITCH's figures."""
    try:
        dump = node.api(commands.dump(live.uuid))
        return states.found_on_reconnect(live.view(), Event(dump.encode(), is_json=True))
    except CommandFailed as exc:
        if "No such channel" in exc.reply:
            return None
        problem = exc.reply.strip()
    except (LinkDown, CommandTimeout, ProtocolError) as exc:
        problem = str(exc)
    logger.warning("reconcile %s: uuid_dump %s: %s", node.name, live.uuid, problem)
    if row.get("callstate") not in ANSWERED_CALLSTATES:
        return None
    return Transition(Status.IN_PROGRESS, now, "reconcile", detail={
        "note": "answered while the gateway was not listening; FreeSWITCH did not say when "
                f"(uuid_dump: {problem}), so answered_at is the reconcile time, an upper bound"})

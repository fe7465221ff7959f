"""Inbound calls the dialplan parked for the gateway, from the park to the answer or the
refusal.  Where a call goes is decided by ``gateway.calls.inbound``; this is who acts on it.

On the worker (:meth:`Reception.accept`), the call is recorded: its Call row is created
there, so it is in place before the CHANNEL_ANSWER that our ``uuid_answer`` causes is
applied, and it is ``ringing`` from its CHANNEL_PARK.  A call to a number nobody owns gets
no Call row (no account to own it), only its ``RefusedCall``.

Then, on a greenlet of its own (the screens may block: the routing webhook takes up to
3 s), the controller's ``inbound_screens`` see it in order; the first refusal refuses the
call unanswered (``uuid_kill`` with the refusal's cause, which FreeSWITCH turns into the
SIP response), and a call all let through is answered.  A screen that fails refuses the
call: one nobody can route is never left ringing.
"""

from __future__ import annotations

import logging
from typing import Callable

from gateway import dialplan_names as names
from gateway.calls.inbound import UNAVAILABLE, InboundCall, InboundRefusal, record_refusal, route_inbound
from gateway.calls.live import LiveCall, LiveCalls
from gateway.calls.messages import LogEntry
from gateway.calls.states import Status, Transition, event_time
from gateway.calls.worker import Batch
from gateway.esl import commands
from gateway.esl.connection import CommandFailed, CommandTimeout, LinkDown
from gateway.esl.node import Node
from gateway.esl.protocol import Event
from gateway.greenlets import GreenletOwner
from gateway.models import Call
from gateway.models.db import connection_scope

logger = logging.getLogger(__name__)

Screen = Callable[[str], InboundRefusal | None]


def is_inbound_park(event: Event) -> bool:
    """Is this the dialplan parking an inbound call for the gateway?"""
    return event.name == "CHANNEL_PARK" and event.get(f"variable_{names.VAR_DIRECTION}") == names.DIRECTION_INBOUND


class Reception:
    """``screens`` is the controller's ``inbound_screens`` list; ``submit`` queues a
    message for the worker."""

    def __init__(self, calls: LiveCalls, screens: list[Screen], submit: Callable[[object], None]) -> None:
        self.calls = calls
        self.screens = screens
        self.submit = submit
        self._greenlets = GreenletOwner("inbound calls")

    def stop(self, grace: float = 5.0) -> None:
        self._greenlets.stop(grace)

    # -- the worker: must not block ------------------------------------------------------------
    def accept(self, node: Node, event: Event, batch: Batch) -> None:
        """Record a parked inbound call, then screen it (or refuse it) on a greenlet."""
        call_uuid = event.unique_id
        if not call_uuid or Call.get_or_none(Call.uuid == call_uuid) is not None:
            return  # a re-delivered park (e.g. after a transfer back to the gateway)
        did = event.get(f"variable_{names.VAR_DID}") or event.get("Caller-Destination-Number") or ""
        inbound = InboundCall(call_uuid, node.name, did, event.get("Caller-Caller-ID-Number") or "",
                              event.get("Caller-Caller-ID-Name") or "")
        variables = {var: event.get(f"variable_{var}") for var in names.CHANNEL_VARIABLES}
        route = route_inbound(did, variables)
        if route.account_id is None:
            self._greenlets.spawn(self._refuse, node, inbound, None, route.refusal)
            return
        Call.create(
            uuid=call_uuid, account=route.account_id, direction="inbound", node=node.name,
            from_number=inbound.from_number, to_number=did, caller_id_name=inbound.caller_id_name,
            socket_url=route.socket_url, webhook_url=route.webhook_url, agent=route.agent_id,
        )
        live = self.calls.add(LiveCall(call_uuid, node.name, channel_seen=True, generation=node.generation))
        batch.move(live, Transition(Status.RINGING, event_time(event), "CHANNEL_PARK",
                                    detail={"note": "inbound call parked by the dialplan", "did": did}))
        if route.refusal is not None:
            self._greenlets.spawn(self._refuse, node, inbound, route.account_id, route.refusal)
        else:
            self._greenlets.spawn(self._screen, node, inbound, route.account_id)

    # -- on greenlets of their own ---------------------------------------------------------------
    def _screen(self, node: Node, inbound: InboundCall, account_id: int) -> None:
        for screen in self.screens:
            try:
                refusal = screen(inbound.uuid)
            except Exception:  # a call nobody can route is refused, never left ringing
                logger.exception("inbound call %s: screening failed", inbound.uuid)
                refusal = InboundRefusal("screening_failed", UNAVAILABLE)
            if refusal is not None:
                self._refuse(node, inbound, account_id, refusal)
                return
        if self.calls.get(inbound.uuid) is None:
            return  # the caller hung up while the screens decided
        self.submit(LogEntry(inbound.uuid, "command", {"command": "answer"}))
        _send(node, commands.answer(inbound.uuid))

    def _refuse(self, node: Node, inbound: InboundCall, account_id: int | None, refusal: InboundRefusal) -> None:
        """Hang the unanswered call up with ``refusal.cause``, which FreeSWITCH turns into
        the SIP response the caller gets (``gateway.calls.inbound``), and record why."""
        if account_id is not None:
            if self.calls.get(inbound.uuid) is None:
                return  # the caller hung up first: nothing left to refuse
            self.submit(LogEntry(inbound.uuid, "inbound",
                                 {"event": "refused", "reason": refusal.reason, "cause": refusal.cause}))
        logger.info("inbound call %s to %s refused (%s): %s", inbound.uuid, inbound.did, refusal.reason,
                    refusal.cause)
        _send(node, commands.kill(inbound.uuid, refusal.cause))
        with connection_scope():
            record_refusal(inbound, account_id, refusal)


def _send(node: Node, command: str) -> None:
    try:
        node.api(command)
    except (LinkDown, CommandTimeout, CommandFailed) as exc:
        logger.warning("inbound call: %s failed: %s", command, exc)

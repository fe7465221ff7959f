"""The call controller: places and controls calls on FreeSWITCH nodes over ESL.

It composes its parts, each in a module of its own:

* one ``Node`` per FreeSWITCH node (``gateway.esl.node``): its reader greenlet only frames
  bytes and queues each event for the worker;
* the worker (``worker.EventWorker``, typed messages in ``messages``): one greenlet that
  applies the queue in batches (events become transitions, ``states.next_transition``)
  and writes each batch in one transaction;
* a pacer per node (``pacer``): every originate waits its turn in the node's session
  budget (``admission``);
* reconciliation (``reconcile``) after every (re)connect, from ``show channels as json``;
* inbound calls (``reception``): recorded, screened, then answered or refused;
* calls that come back (``handback``): a failed transfer, a call found after a restart;
* waiters (``waiters``): for an event of a call or for a status.

What stays here ties them together: placing a call, the commands on a live call (their
text is built in ``gateway.esl.commands``), where each event goes, and the order in which
the parts start and stop (each stops the greenlets it started: it waits for them, then
kills what is left).  Calls whose uuid we know are kept in ``live`` (``live.LiveCalls``)
while they can still change; a call that reaches a final status leaves it.  Callers (API
requests, scripts) send commands with a timeout, on their own greenlets.
"""

from __future__ import annotations

import logging
import uuid as uuidlib
from datetime import datetime, timezone
from typing import Callable, Iterable

import gevent
from gevent.event import AsyncResult

from gateway import dialplan_names as names
from gateway.calls.admission import SESSION_REFUSED, Ticket
from gateway.calls.dialstring import check_dialable, originate_command
from gateway.calls.errors import CallError
from gateway.calls.handback import Handback, is_return
from gateway.calls.inbound import InboundRefusal
from gateway.calls.live import LiveCall, LiveCalls
from gateway.calls.messages import LinkUp, LogEntry, NodeEvent, OriginateFailed, Vanished
from gateway.calls.pacer import NodePacer
from gateway.calls.reception import Reception, is_inbound_park
from gateway.calls.reconcile import Reconciler
from gateway.calls.states import FINAL, Status, Transition, next_transition, originate_failed
from gateway.calls.store import Change
from gateway.calls.waiters import Waiters
from gateway.calls.worker import Batch, EventWorker, Listener
from gateway.config import DEFAULT_ADMISSION_WAIT
from gateway.dialplan_names import DIALPLAN, TRANSFER_CONTEXT, transfer_target
from gateway.esl import commands
from gateway.esl.app_args import UnsafeArgument
from gateway.esl.connection import CommandFailed, CommandTimeout, LinkDown
from gateway.esl.node import Node
from gateway.esl.protocol import Event
from gateway.models import Call
from gateway.models.db import connection_scope

logger = logging.getLogger(__name__)

__all__ = ["CallController", "CallError"]


class CallController:
    """Owns every node connection of this process and the calls placed through it."""

    def __init__(
        self,
        nodes: Iterable,
        carrier_gateway: str = "carrier",  # used when FreeSWITCH has no gateway_carrier global
        originate_timeout: int = 60,
        command_timeout: float = 5.0,
        batch_size: int = 500,
        admission_wait: float = DEFAULT_ADMISSION_WAIT,  # seconds a call may wait for its node's budget
    ) -> None:
        self.carrier_gateway = carrier_gateway
        self.originate_timeout = originate_timeout
        self.calls = LiveCalls()
        self.live: dict[str, LiveCall] = self.calls.live

        # -- the hooks other components register (the runtime wires them) --------------------
        # Run inside the transaction that writes a batch of status changes (the webhook
        # outbox lives here); DB writes only, and an exception rolls the batch back.
        self.transaction_hooks: list[Callable[[list[Change]], None]] = []
        # The same for the batch's call-log entries (``store.apply``'s ``log_hooks``).
        self.log_hooks: list[Callable[[list[dict]], None]] = []
        # Run after the commit, on the worker: must not block.
        self.listeners: list[Listener] = [self._track_session]
        # ``hook(call_uuid, event)`` for every ESL event of a live call (media, DTMF,
        # playback, mod_audio_stream::*), on the worker in arrival order: must not block.
        self.waiters = Waiters(self.calls)
        self.event_hooks: list[Callable[[str, Event], None]] = [self.waiters.wake]
        # ``screen(call_uuid) -> InboundRefusal | None`` for a parked inbound call, before it
        # is answered, on a greenlet of its own (may block: the routing webhook takes up to
        # 3 s); a refusal refuses the call unanswered.  The media sessions decide the bot here.
        self.inbound_screens: list[Callable[[str], InboundRefusal | None]] = []
        # ``hook(call_uuid)`` before a transfer is sent, in order; may block (the media
        # sessions stop the call's bot stream here, so that it ends before the transfer).
        self.before_transfer: list[Callable[[str], None]] = []
        # ``hook(call_uuid) -> bool`` for a call that comes back (``gateway.calls.handback``:
        # a failed transfer, a call re-attached after a restart), on a greenlet of its own:
        # True when it took the call (gave it its bot again, or ended it with a reason).
        self.take_back: list[Callable[[str], bool]] = []
        # The public surface's playback scripts, once installed (``gateway.api.public``).
        self.public_scripts = None

        # -- the parts --------------------------------------------------------------------------
        self.worker = EventWorker(self.calls, self.transaction_hooks, self.log_hooks, self.listeners, batch_size)
        submit = self.worker.submit
        self.nodes: dict[str, Node] = {
            cfg.name: Node(cfg.name, cfg.host, cfg.port, cfg.password,
                           on_event=lambda node, event: submit(NodeEvent(node, event)),
                           on_connected=lambda node: submit(LinkUp(node, node.generation)),
                           command_timeout=command_timeout, globals_wanted=(names.GLOBAL_CARRIER,))
            for cfg in nodes
        }
        # Every originate waits its turn in its node's line (``admission.py``).
        self.pacers: dict[str, NodePacer] = {
            name: NodePacer(node, admission_wait, self._start_call, self._not_admitted)
            for name, node in self.nodes.items()
        }
        self.handback = Handback(self)
        self.reconciler = Reconciler(self.calls, self.pacers, self.handback, submit)
        self.reception = Reception(self.calls, self.inbound_screens, submit)
        self.worker.route(NodeEvent, self._on_event)
        self.worker.route(LinkUp, self.reconciler.link_up)
        self.worker.route(Vanished, self.reconciler.close_vanished)
        self._round_robin = 0

    # -- lifecycle ----------------------------------------------------------------------
    def start(self) -> None:
        self.worker.start()
        for node in self.nodes.values():
            node.start()
        for pacer in self.pacers.values():
            pacer.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the parts that start work (each waits for its greenlets, then kills what
        is left), close the node links, then let the worker write what it already has."""
        self.reception.stop(timeout)
        self.handback.stop(timeout)
        for pacer in self.pacers.values():
            unstarted = pacer.stop()
            if unstarted:
                logger.warning("FreeSWITCH %s: %d queued calls will not start", pacer.node.name, len(unstarted))
            for ticket in unstarted:
                self._fail_unstarted(ticket.call_uuid, "not started: the gateway stopped while it waited for its turn")
        for node in self.nodes.values():
            node.stop()
        self.worker.stop(timeout)

    def wait_connected(self, timeout: float = 10.0) -> bool:
        with gevent.Timeout(timeout, False):
            for node in self.nodes.values():
                node.wait_connected()
            return True
        return False

    # -- the call log ---------------------------------------------------------------------
    def log(self, call_uuid: str, kind: str, detail: dict) -> None:
        """Add an entry to the call's log (any greenlet, never blocks): written by the
        worker in order with the call's status changes."""
        self.worker.submit(LogEntry(call_uuid, kind, detail))

    def flush(self, timeout: float = 5.0) -> None:
        """Return once everything queued so far (events, log entries) is committed."""
        self.worker.flush(timeout)

    # -- placing calls --------------------------------------------------------------------
    def pick_node(self) -> Node:
        connected = [n for n in self.nodes.values() if n.connected.is_set()]
        if not connected:
            raise CallError("no FreeSWITCH node is connected", code=503)
        self._round_robin = (self._round_robin + 1) % len(connected)
        return connected[self._round_robin]

    def originate(
        self,
        account_id: int,
        to_number: str,
        from_number: str,
        caller_id_name: str = "",
        socket_url: str | None = None,
        webhook_url: str | None = None,
        custom_args: dict | None = None,
        timeout: int | None = None,
    ) -> Call:
        """Write the Call row (status ``queued``, uuid chosen here), then originate it."""
        check_dialable(to_number)
        check_dialable(from_number)
        node = self.pick_node()
        call_uuid, job_uuid = str(uuidlib.uuid4()), str(uuidlib.uuid4())
        # In memory before the row exists: the insert yields to other greenlets, and a
        # reconciliation running meanwhile must see this call as ours, not as vanished.
        self.calls.add(LiveCall(call_uuid, node.name, job_uuid=job_uuid, generation=node.generation))
        try:
            call = Call.create(
                uuid=call_uuid, account=account_id, direction="outbound",
                from_number=from_number, to_number=to_number, caller_id_name=caller_id_name,
                node=node.name, socket_url=socket_url, webhook_url=webhook_url,
                custom_args=custom_args or {}, job_uuid=job_uuid,
            )
        except Exception:
            self.calls.forget(call_uuid, job_uuid)
            raise
        self.place(call, node, timeout)
        return call

    def place(self, call: Call, node: Node | None = None, timeout: int | None = None) -> None:
        """Put a queued Call row (its ``job_uuid`` set, so that a restarted process can tell
        a call that was sent from one that never was) in its node's line; the node's pacer
        sends its ``bgapi originate`` when the node's session budget allows, in placing
        order, or fails it (``SWITCH_CONGESTION``) once it has waited ``admission_wait``."""
        node = node or self.nodes[call.node]
        if call.job_uuid is None:
            call.job_uuid = str(uuidlib.uuid4())
            Call.update(job_uuid=call.job_uuid).where(Call.uuid == call.uuid).execute()
        if call.uuid not in self.live:
            self.calls.add(LiveCall(call.uuid, node.name, job_uuid=call.job_uuid, generation=node.generation))
        self.pacers[node.name].submit(call.uuid, (call, node, timeout or self.originate_timeout))

    def _start_call(self, ticket: Ticket) -> None:
        """The pacer's turn for a call: ``bgapi originate`` on the node's current link, whose
        globals were read when it connected (the carrier trunk is named once, in
        FreeSWITCH's vars.xml)."""
        call, node, timeout = ticket.order
        live = self.live.get(call.uuid)
        pacer = self.pacers[node.name]
        if live is None:  # ended while it waited
            pacer.release(call.uuid)
            return
        live.generation = node.generation  # sent on this link: its reconciliation leaves it alone
        carrier = node.globals.get(names.GLOBAL_CARRIER) or self.carrier_gateway
        try:
            command = originate_command(
                call.uuid, f"sofia/gateway/{carrier}/{call.to_number}",
                call.from_number, call.caller_id_name, timeout,
            )
            node.bgapi(command, call.job_uuid)
        except (LinkDown, CommandTimeout, CommandFailed, UnsafeArgument) as exc:
            pacer.release(call.uuid)
            self.log(call.uuid, "admission", {"error": f"FreeSWITCH did not accept the call: {exc}"})
            self.worker.submit(OriginateFailed(call.uuid, "-ERR NORMAL_TEMPORARY_FAILURE\n"))

    def _not_admitted(self, ticket: Ticket, reason: str) -> None:
        """The pacer gave up on a call that could not start in time."""
        logger.warning("call %s: %s", ticket.call_uuid, reason)
        self._fail_unstarted(ticket.call_uuid, reason)

    def _fail_unstarted(self, call_uuid: str, reason: str) -> None:
        """A call that never reached FreeSWITCH: its log says why, then it fails."""
        self.log(call_uuid, "admission", {"error": reason})
        self.worker.submit(OriginateFailed(call_uuid, "-ERR SWITCH_CONGESTION\n"))

    def _track_session(self, call_uuid: str, transition: Transition) -> None:
        """A listener: a call that ended frees its session on its node; a live call we did
        not start ourselves (an inbound one, one re-attached after a restart) holds one."""
        if transition.to_status in FINAL:
            for pacer in self.pacers.values():
                pacer.release(call_uuid)
            return
        live = self.live.get(call_uuid)
        if live is not None:
            self.pacers[live.node].hold(call_uuid)

    # -- where each event goes (on the worker) ----------------------------------------------
    def _on_event(self, message: NodeEvent, batch: Batch) -> None:
        event = message.event
        name = event.name
        if name == "BACKGROUND_JOB":
            live = self.calls.by_job(event.get("Job-UUID") or "")
            if live is not None and not live.channel_seen:
                body = event.body or ""
                if body.strip() == SESSION_REFUSED and self.pacers[live.node].refused(live.uuid):
                    self.log(live.uuid, "admission", {
                        "note": "FreeSWITCH refused to start the session (DESTINATION_OUT_OF_ORDER: at its "
                                "sessions-per-second or max-sessions limit); it is retried"})
                    return
                batch.move(live, originate_failed(live.view(), body, datetime.now(timezone.utc)))
            return
        live = self.live.get(event.unique_id or "")
        if live is None:
            if is_inbound_park(event):
                self.reception.accept(message.node, event, batch)
            return
        for hook in self.event_hooks:
            try:
                hook(live.uuid, event)
            except Exception:
                logger.exception("event hook failed on %s", name)
        if name == "CHANNEL_CREATE":
            live.channel_seen = True
            return
        if live.status is Status.IN_PROGRESS and is_return(event):
            self.handback.parked_again(live.uuid, event)
            return
        batch.move(live, next_transition(live.view(), event))

    # -- commands on live calls -------------------------------------------------------------
    def _node_for(self, call_uuid: str) -> Node:
        live = self.live.get(call_uuid)
        if live is not None:
            return self.nodes[live.node]
        with connection_scope():
            call = Call.get_or_none(Call.uuid == call_uuid)
        if call is None:
            raise CallError("call not found", code=404)
        if Status(call.status) in FINAL:
            raise CallError(f"call has already ended ({call.status})", code=409)
        node = self.nodes.get(call.node)
        if node is None:
            raise CallError(f"call is on FreeSWITCH node {call.node}, which this gateway does not manage", code=409)
        return node

    def _api(self, call_uuid: str, build: Callable[..., str], args: tuple, log: dict | None) -> str:
        """Send one API command for a call (``build(*args)``, refused with a 400 if it holds
        an argument FreeSWITCH would misread); it is logged (unless ``log`` is None) before
        it is sent, so the call's log shows it ahead of the events it causes."""
        node = self._node_for(call_uuid)
        try:
            command = build(*args)
        except UnsafeArgument as exc:
            raise CallError(f"{build.__name__}: {exc}", code=400) from None
        if log is not None:
            self.log(call_uuid, "command", log)
        try:
            return node.api(command)
        except CommandFailed as exc:
            self.log(call_uuid, "command", {**(log or {"command": command}), "error": exc.reply.strip()})
            if "No such channel" in exc.reply or "invalid uuid" in exc.reply.lower():
                raise CallError("call is no longer active on FreeSWITCH", code=409) from None
            raise CallError(f"FreeSWITCH refused: {exc.reply.strip()}", code=409) from None
        except (LinkDown, CommandTimeout) as exc:
            self.log(call_uuid, "command", {**(log or {"command": command}), "error": str(exc)})
            raise CallError(f"FreeSWITCH node unavailable: {exc}", code=503) from None

    def hangup(self, call_uuid: str, cause: str = "NORMAL_CLEARING") -> None:
        """``uuid_kill``; a call still waiting for its turn is taken out of the line instead
        (never sent) and ends canceled."""
        live = self.live.get(call_uuid)
        if live is not None and self.pacers[live.node].cancel(call_uuid):  # still in line: never sent
            self.log(call_uuid, "command", {"command": "hangup", "cause": cause})
            self.worker.submit(OriginateFailed(call_uuid, f"-ERR {cause}\n"))
            return
        self._api(call_uuid, commands.kill, (call_uuid, cause), {"command": "hangup", "cause": cause})

    def transfer(self, call_uuid: str, destination: str) -> None:
        """Blind transfer to a PSTN number, an extension or a SIP URI, through the shipped
        transfer context (``dialplan/gateway_transfer.xml``), once the ``before_transfer``
        hooks have run.  A transfer that fails comes back (``gateway.calls.handback``)."""
        try:
            extension, variables = transfer_target(destination)
        except ValueError as exc:
            raise CallError(str(exc), code=400) from None
        self._node_for(call_uuid)  # an unknown or ended call is refused before any hook runs
        for hook in self.before_transfer:
            hook(call_uuid)
        for name, value in variables.items():
            self._api(call_uuid, commands.setvar, (call_uuid, name, value), {"command": "setvar", "name": name})
        self._api(call_uuid, commands.transfer, (call_uuid, extension, DIALPLAN, TRANSFER_CONTEXT),
                  {"command": "transfer", "destination": destination})

    def start_stream(self, call_uuid: str, url: str, mix: str = "mono", rate: str = "8k", metadata: str = "") -> None:
        """Fork the call's audio to ``url`` with mod_audio_stream."""
        # the query carries the stream's access token: keep it out of the call log
        self._api(call_uuid, commands.audio_stream_start, (call_uuid, url, mix, rate, metadata),
                  {"command": "audio_stream_start", "url": url.split("?", 1)[0]})

    def stop_stream(self, call_uuid: str) -> None:
        self._api(call_uuid, commands.audio_stream_stop, (call_uuid,), {"command": "audio_stream_stop"})

    def get_var(self, call_uuid: str, name: str) -> str | None:
        """``uuid_getvar``: the channel variable's value, None if it is unset."""
        value = self._api(call_uuid, commands.getvar, (call_uuid, name), None)
        return None if value in ("", "_undef_") else value

    def unset_var(self, call_uuid: str, name: str) -> None:
        self._api(call_uuid, commands.unsetvar, (call_uuid, name), None)

    def break_playback(self, call_uuid: str) -> None:
        self._api(call_uuid, commands.break_playback, (call_uuid,), {"command": "break"})

    def execute(self, call_uuid: str, app: str, arg: str = "", event_lock: bool = True,
                log_arg: bool = True, log: bool = True) -> str:
        """Run a dialplan application on the call (``sendmsg`` execute); returns the
        Application-UUID that its CHANNEL_EXECUTE / _COMPLETE events will carry.

        ``event_lock`` keeps queued applications from starting inside this one, so a
        script's steps run strictly in order; ``log_arg=False`` keeps a secret argument
        (an OTP readout's path) out of the call's log, and ``log=False`` the command
        itself (a bot's audio chunk every 200 ms would drown the log; failures are
        still raised).

        Every application argument the gateway sends passes here, so this is where one
        FreeSWITCH would expand or split (``app_args.check``, in ``commands.execute``) is
        refused (``CallError`` 400, nothing sent)."""
        app_uuid = str(uuidlib.uuid4())
        try:
            headers = commands.execute(app, arg, app_uuid, event_lock)
        except UnsafeArgument as exc:
            raise CallError(f"{app}: {exc}", code=400) from None
        node = self._node_for(call_uuid)
        if log:
            self.log(call_uuid, "command", {"command": "execute", "app": app, "arg": arg if log_arg else "[redacted]"})
        try:
            node.sendmsg(call_uuid, headers)
        except CommandFailed as exc:
            raise CallError("call is no longer active on FreeSWITCH" if "invalid session" in exc.reply
                            else f"FreeSWITCH refused: {exc.reply.strip()}", code=409) from None
        except (LinkDown, CommandTimeout) as exc:
            raise CallError(f"FreeSWITCH node unavailable: {exc}", code=503) from None
        return app_uuid

    # -- waiting (scripts, demo, tests): ``waiters`` ------------------------------------------
    def expect(self, call_uuid: str, predicate: Callable[[Event], bool]) -> AsyncResult:
        return self.waiters.expect(call_uuid, predicate)

    def wait_event(self, call_uuid: str, predicate: Callable[[Event], bool], timeout: float) -> Event:
        return self.waiters.wait_event(call_uuid, predicate, timeout)

    def wait_status(self, call_uuid: str, statuses: Iterable[Status | str], timeout: float) -> Status:
        return self.waiters.wait_status(call_uuid, statuses, timeout)

"""The call controller: places and controls calls on FreeSWITCH nodes over ESL.

Greenlets and their jobs:

* one reader per node (``Node``/``ESLLink``): frames bytes, enqueues events, nothing else;
* one worker: drains the queue in batches, turns events into transitions
  (``states.next_transition``) and writes each batch in one transaction;
* callers (API requests, scripts): originate and send commands with a timeout.

Calls whose uuid we know are kept in ``live`` while they can still change; a call that
reaches a final status leaves it.  After every (re)connect the node is reconciled with
``show channels as json``: calls that ended while we were away are closed (their end time
an upper bound), live ones are re-attached with what FreeSWITCH recorded meanwhile (an
answer, at its time), so nothing stays "in progress" for ever.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from collections import OrderedDict
import uuid as uuidlib
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Callable, Iterable

import gevent
from gevent.event import AsyncResult, Event as Flag
from gevent.queue import Empty, Queue
from peewee import IntegrityError, InterfaceError, OperationalError

from gateway.calls import store
from gateway.calls.admission import SESSION_REFUSED, Ticket
from gateway.calls.pacer import NodePacer
from gateway.calls.dialstring import check_dialable, originate_command
from gateway import dialplan_names as names
from gateway.dialplan_names import DIALPLAN, TRANSFER_CONTEXT, transfer_target
from gateway.calls.inbound import UNAVAILABLE, InboundCall, InboundRefusal, record_refusal, route_inbound
from gateway.calls.states import (
    FINAL, LIVE, CallView, Status, Transition, channel_vanished, event_time, found_on_reconnect, next_transition,
    originate_failed,
)
from gateway.esl import app_args
from gateway.esl.connection import CommandFailed, CommandTimeout, LinkDown
from gateway.config import DEFAULT_ADMISSION_WAIT
from gateway.esl.node import Node
from gateway.esl.protocol import Event, ProtocolError
from gateway.greenlets import GreenletOwner
from gateway.models import Call, utcnow
from gateway.models.db import connection_scope

logger = logging.getLogger(__name__)


class CallError(Exception):
    """A command cannot be carried out on this call; ``code`` is an HTTP-ish hint."""

    def __init__(self, message: str, code: int = 409) -> None:
        super().__init__(message)
        self.code = code


@dataclass(slots=True)
class LiveCall:
    """The controller's memory of a call that can still change."""

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


Listener = Callable[[str, Transition], None]

RECENTLY_ENDED = 10_000

# ``show channels``' callstate of an answered channel (``switch_channel_callstate_t``:
# HELD and UNHELD come only after ACTIVE).
ANSWERED_CALLSTATES = frozenset({"ACTIVE", "HELD", "UNHELD"})


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
        self.batch_size = batch_size
        self.inbox: Queue = Queue()
        self.live: dict[str, LiveCall] = {}
        self.jobs: dict[str, str] = {}  # originate Job-UUID → call uuid
        self.recently_ended: OrderedDict[str, Status] = OrderedDict()  # spares waiters a DB read
        # Run inside the transaction that writes a batch of status changes (the webhook
        # outbox lives here); DB writes only, and an exception rolls the batch back.
        self.transaction_hooks: list[Callable[[list[store.Change]], None]] = []
        # The same for the batch's call-log entries (``store.apply``'s ``log_hooks``).
        self.log_hooks: list[Callable[[list[dict]], None]] = []
        # ``screen(call_uuid) -> InboundRefusal | None`` for a parked inbound call, before it
        # is answered, on a greenlet of its own (may block: the routing webhook takes up to
        # 3 s); a refusal refuses the call unanswered.  The media sessions decide the bot here.
        self.inbound_screens: list[Callable[[str], InboundRefusal | None]] = []
        self._inbound = GreenletOwner("inbound calls")
        # Run after the commit, on the worker: must not block.
        self.listeners: list[Listener] = []
        # ``hook(call_uuid, event)`` for every ESL event of a live call (media, DTMF,
        # playback, mod_audio_stream::*), on the worker in arrival order: must not block.
        self.event_hooks: list[Callable[[str, Event], None]] = [self._wake_waiters]
        self._waiters: dict[str, list[tuple[Callable[[Event], bool], AsyncResult]]] = {}
        self.nodes: dict[str, Node] = {
            cfg.name: Node(cfg.name, cfg.host, cfg.port, cfg.password,
                           on_event=self._enqueue, on_connected=self._link_up,
                           command_timeout=command_timeout, globals_wanted=(names.GLOBAL_CARRIER,))
            for cfg in nodes
        }
        # Every originate waits its turn in its node's line (``admission.py``).
        self.pacers: dict[str, NodePacer] = {
            name: NodePacer(node, admission_wait, self._start_call, self._not_admitted)
            for name, node in self.nodes.items()
        }
        self.listeners.append(self._track_session)
        self._worker: gevent.Greenlet | None = None
        self._round_robin = 0

    # -- lifecycle ----------------------------------------------------------------------
    def start(self) -> None:
        self._worker = gevent.spawn(self._work)
        for node in self.nodes.values():
            node.start()
        for pacer in self.pacers.values():
            pacer.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Close the node links, then let the worker write what it already has: killing
        it mid-transaction would leave a pooled connection holding row locks."""
        self._inbound.stop(timeout)
        for pacer in self.pacers.values():
            unstarted = pacer.stop()
            if unstarted:
                logger.warning("FreeSWITCH %s: %d queued calls will not start", pacer.node.name, len(unstarted))
            for ticket in unstarted:
                self._fail_unstarted(ticket.call_uuid, "not started: the gateway stopped while it waited for its turn")
        for node in self.nodes.values():
            node.stop()
        if self._worker is not None:
            self.inbox.put(("stop",))
            self._worker.join(timeout)
            self._worker.kill()
            self._worker = None

    def wait_connected(self, timeout: float = 10.0) -> bool:
        with gevent.Timeout(timeout, False):
            for node in self.nodes.values():
                node.wait_connected()
            return True
        return False

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
        self._register(call_uuid, node, job_uuid)
        try:
            call = Call.create(
                uuid=call_uuid, account=account_id, direction="outbound",
                from_number=from_number, to_number=to_number, caller_id_name=caller_id_name,
                node=node.name, socket_url=socket_url, webhook_url=webhook_url,
                custom_args=custom_args or {}, job_uuid=job_uuid,
            )
        except Exception:
            self._forget(call_uuid, job_uuid)
            raise
        self.place(call, node, timeout)
        return call

    def _register(self, call_uuid: str, node: Node, job_uuid: str) -> LiveCall:
        live = LiveCall(call_uuid, node.name, job_uuid=job_uuid, generation=node.generation)
        self.live[call_uuid] = live
        self.jobs[job_uuid] = call_uuid
        return live

    def _forget(self, call_uuid: str, job_uuid: str) -> None:
        self.live.pop(call_uuid, None)
        self.jobs.pop(job_uuid, None)

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
            self._register(call.uuid, node, call.job_uuid)
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
        command = originate_command(
            call.uuid, f"sofia/gateway/{carrier}/{call.to_number}",
            call.from_number, call.caller_id_name, timeout,
        )
        try:
            node.bgapi(command, call.job_uuid)
        except (LinkDown, CommandTimeout, CommandFailed) as exc:
            pacer.release(call.uuid)
            self.inbox.put(("log", call.uuid, "admission", {"error": f"FreeSWITCH did not accept the call: {exc}"}))
            self.inbox.put(("failed", call.uuid, "-ERR NORMAL_TEMPORARY_FAILURE\n", str(exc)))

    def _not_admitted(self, ticket: Ticket, reason: str) -> None:
        """The pacer gave up on a call that could not start in time."""
        logger.warning("call %s: %s", ticket.call_uuid, reason)
        self._fail_unstarted(ticket.call_uuid, reason)

    def _fail_unstarted(self, call_uuid: str, reason: str) -> None:
        """A call that never reached FreeSWITCH: its log says why, then it fails."""
        self.inbox.put(("log", call_uuid, "admission", {"error": reason}))
        self.inbox.put(("failed", call_uuid, "-ERR SWITCH_CONGESTION\n", reason))

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

    def _api(self, call_uuid: str, command: str, log: dict | None) -> str:
        """Send one API command for a call; it is logged (unless ``log`` is None) before
        it is sent, so the call's log shows it ahead of the events it causes."""
        node = self._node_for(call_uuid)
        if log is not None:
            self.inbox.put(("log", call_uuid, "command", log))
        try:
            return node.api(command)
        except CommandFailed as exc:
            self.inbox.put(("log", call_uuid, "command", {**(log or {"command": command}), "error": exc.reply.strip()}))
            if "No such channel" in exc.reply or "invalid uuid" in exc.reply.lower():
                raise CallError("call is no longer active on FreeSWITCH", code=409) from None
            raise CallError(f"FreeSWITCH refused: {exc.reply.strip()}", code=409) from None
        except (LinkDown, CommandTimeout) as exc:
            self.inbox.put(("log", call_uuid, "command", {**(log or {"command": command}), "error": str(exc)}))
            raise CallError(f"FreeSWITCH node unavailable: {exc}", code=503) from None

    def hangup(self, call_uuid: str, cause: str = "NORMAL_CLEARING") -> None:
        """``uuid_kill``; a call still waiting for its turn is taken out of the line instead
        (never sent) and ends canceled."""
        live = self.live.get(call_uuid)
        if live is not None and self.pacers[live.node].cancel(call_uuid):  # still in line: never sent
            self.inbox.put(("log", call_uuid, "command", {"command": "hangup", "cause": cause}))
            self.inbox.put(("failed", call_uuid, f"-ERR {cause}\n", "hung up while waiting to start"))
            return
        self._api(call_uuid, f"uuid_kill {call_uuid} {cause}", {"command": "hangup", "cause": cause})

    def transfer(self, call_uuid: str, destination: str) -> None:
        """Blind transfer to a PSTN number, an extension or a SIP URI, through the shipped
        transfer context (``dialplan/gateway_transfer.xml``)."""
        try:
            extension, variables = transfer_target(destination)
        except ValueError as exc:
            raise CallError(str(exc), code=400) from None
        for name, value in variables.items():
            self._api(call_uuid, f"uuid_setvar {call_uuid} {name} {value}", {"command": "setvar", "name": name})
        self._api(call_uuid, f"uuid_transfer {call_uuid} {extension} {DIALPLAN} {TRANSFER_CONTEXT}",
                  {"command": "transfer", "destination": destination})

    def start_stream(self, call_uuid: str, url: str, mix: str = "mono", rate: str = "8k", metadata: str = "") -> None:
        """Fork the call's audio to ``url`` with mod_audio_stream."""
        command = f"uuid_audio_stream {call_uuid} start {url} {mix} {rate}"
        if metadata:
            command += f" {metadata}"
        # the query carries the stream's access token: keep it out of the call log
        self._api(call_uuid, command, {"command": "audio_stream_start", "url": url.split("?", 1)[0]})

    def stop_stream(self, call_uuid: str) -> None:
        self._api(call_uuid, f"uuid_audio_stream {call_uuid} stop", {"command": "audio_stream_stop"})

    def broadcast(self, call_uuid: str, path: str, log: bool = True) -> None:
        """Play ``path`` to the caller; ``log=False`` for streamed bot audio (a chunk every
        few hundred ms would drown the call's log; failures are still logged)."""
        self._api(call_uuid, f"uuid_broadcast {call_uuid} {path} aleg",
                  {"command": "broadcast", "path": path} if log else None)

    def execute(self, call_uuid: str, app: str, arg: str = "", event_lock: bool = True,
                log_arg: bool = True) -> str:
        """Run a dialplan application on the call (``sendmsg`` execute); returns the
        Application-UUID that its CHANNEL_EXECUTE / _COMPLETE events will carry.

        ``event_lock`` keeps queued applications from starting inside this one, so a
        script's steps run strictly in order; ``log_arg=False`` keeps a secret argument
        (an OTP readout's path) out of the call's log.

        Every application argument the gateway sends passes here, so this is where one
        FreeSWITCH would expand or split (``app_args.check``) is refused (``CallError`` 400,
        nothing sent)."""
        try:
            app_args.check(arg)
        except app_args.UnsafeArgument as exc:
            raise CallError(f"{app}: {exc}", code=400) from None
        node = self._node_for(call_uuid)
        app_uuid = str(uuidlib.uuid4())
        headers = {"call-command": "execute", "execute-app-name": app, "event-uuid": app_uuid}
        if arg:
            headers["execute-app-arg"] = arg
        if event_lock:
            headers["event-lock"] = "true"
        self.inbox.put(("log", call_uuid, "command",
                        {"command": "execute", "app": app, "arg": arg if log_arg else "[redacted]"}))
        try:
            node.sendmsg(call_uuid, headers)
        except CommandFailed as exc:
            raise CallError("call is no longer active on FreeSWITCH" if "invalid session" in exc.reply
                            else f"FreeSWITCH refused: {exc.reply.strip()}", code=409) from None
        except (LinkDown, CommandTimeout) as exc:
            raise CallError(f"FreeSWITCH node unavailable: {exc}", code=503) from None
        return app_uuid

    def wait_event(self, call_uuid: str, predicate: Callable[[Event], bool], timeout: float) -> Event:
        """Block this greenlet until an event of the call satisfies ``predicate``.

        Register before causing the event (e.g. ``waiter = controller.expect(...)``) when
        it may come fast; this helper registers and waits in one go for the common case."""
        return self.expect(call_uuid, predicate).get(timeout=timeout)

    def expect(self, call_uuid: str, predicate: Callable[[Event], bool]) -> AsyncResult:
        """An ``AsyncResult`` set with the first later event of the call matching
        ``predicate``, or with ``CallError`` if the call ends first."""
        result: AsyncResult = AsyncResult()
        self._waiters.setdefault(call_uuid, []).append((predicate, result))
        return result

    def break_playback(self, call_uuid: str) -> None:
        self._api(call_uuid, f"uuid_break {call_uuid} all", {"command": "break"})

    # -- waiting (scripts, demo, tests) -------------------------------------------------------
    def flush(self, timeout: float = 5.0) -> None:
        """Return once everything queued so far (events, log entries) is committed."""
        done: AsyncResult = AsyncResult()
        self.inbox.put(("flush", done))
        done.get(timeout=timeout)

    def wait_status(self, call_uuid: str, statuses: Iterable[Status | str], timeout: float) -> Status:
        """Block this greenlet until the call reaches one of ``statuses``."""
        wanted = {Status(s) for s in statuses}
        with gevent.Timeout(timeout, CallError(f"call {call_uuid} did not reach {sorted(wanted)} in {timeout}s", 504)):
            while True:
                live = self.live.get(call_uuid)
                if live is None:
                    ended = self.recently_ended.get(call_uuid)
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

    # -- event intake (reader greenlet: enqueue only) ----------------------------------------
    def _enqueue(self, node: Node, event: Event) -> None:
        self.inbox.put(("event", node, event))

    def _link_up(self, node: Node) -> None:
        self.inbox.put(("link_up", node, node.generation))

    # -- the worker ---------------------------------------------------------------------------
    def _work(self) -> None:
        with store.database.connection_context():
            stopping = False
            while not stopping:
                batch = [self.inbox.get()]
                try:
                    while len(batch) < self.batch_size:
                        batch.append(self.inbox.get_nowait())
                except Empty:
                    pass
                if ("stop",) in batch:
                    stopping = True
                    batch = [item for item in batch if item != ("stop",)]
                try:
                    self._process(batch)
                except Exception:  # a bad batch must not stop the controller
                    logger.exception("call controller failed to process %d items", len(batch))

    def _process(self, batch: list) -> None:
        """Apply a batch of queued items, then commit what they changed in one write.

        Each item is applied on its own: one that raises (a malformed event, a bug on
        one call) is logged and skipped, and the rest of the batch goes on."""
        changes: list[tuple[str, str, int, Transition]] = []
        logs: list[dict] = []
        flushed: list[AsyncResult] = []
        for item in batch:
            kind = item[0]
            try:
                if kind == "event":
                    self._on_event(item[1], item[2], changes)
                elif kind == "failed":
                    _, call_uuid, body, why = item
                    live = self.live.get(call_uuid)
                    if live is not None:
                        self._transition(live, originate_failed(live.view(), body, datetime.now(timezone.utc)),
                                         changes)
                elif kind == "log":
                    _, call_uuid, log_kind, detail = item
                    live = self.live.get(call_uuid)
                    if live is not None:
                        seq, at = live.stamp(utcnow())
                        logs.append(store.log_entry(call_uuid, seq, log_kind, detail, live.status.value, at))
                    else:
                        self._log_unowned(call_uuid, log_kind, detail)
                elif kind == "gone":
                    _, gone, now = item
                    for live, call in gone:
                        try:
                            if self.live.get(live.uuid) is live and live.status not in FINAL:
                                self._transition(live, self._gone(live, call, now), changes)
                        except Exception:
                            logger.exception("call controller: could not close vanished call %s", live.uuid)
                elif kind == "flush":
                    flushed.append(item[1])
                elif kind == "link_up":
                    _, node, generation = item
                    self._reconcile(node, generation, changes)
            except Exception:
                shown = f"event {item[2].raw[:200]!r}" if kind == "event" else kind
                logger.exception("call controller: skipped a %s item it could not apply: %s", kind, shown)
        self._write(changes, logs)
        for done in flushed:
            done.set()
        for call_uuid, _, _, transition in changes:
            live = self.live.get(call_uuid)
            if live is not None:
                live.committed = transition.to_status
                live.changed.set()
                if transition.to_status in FINAL:
                    del self.live[call_uuid]
                    self.recently_ended[call_uuid] = transition.to_status
                    if len(self.recently_ended) > RECENTLY_ENDED:
                        self.recently_ended.popitem(last=False)
                    if live.job_uuid:
                        self.jobs.pop(live.job_uuid, None)
            for listener in self.listeners:
                try:
                    listener(call_uuid, transition)
                except Exception:
                    logger.exception("call listener failed")

    def _write(self, changes: list, logs: list, attempts: int = 8) -> None:
        """Commit a batch in one transaction, retrying while the database is unavailable
        (events keep queueing meanwhile).

        Any other failure means something in the batch is bad (a value the database
        refuses, a transaction hook that fails on one call): the batch is then written
        call by call, so that only the calls whose writes fail are lost. The in-memory
        state has already moved on, so giving up is the last resort, and loud."""
        def commit(batch_changes: list, batch_logs: list) -> None:
            store.apply(batch_changes, batch_logs, self.transaction_hooks, self.log_hooks)

        for attempt in range(attempts):
            try:
                commit(changes, logs)
                return
            except (OperationalError, InterfaceError):
                logger.exception("writing %d call changes failed (attempt %d)", len(changes), attempt + 1)
                gevent.sleep(min(0.1 * 2 ** attempt, 5.0))
            except Exception:
                logger.exception("writing %d call changes failed; writing them call by call", len(changes))
                break
        by_call: dict[str, tuple[list, list]] = {}
        for change in changes:
            by_call.setdefault(change[0], ([], []))[0].append(change)
        for entry in logs:
            by_call.setdefault(entry["call"], ([], []))[1].append(entry)
        dropped = []
        for call_uuid, (call_changes, call_logs) in by_call.items():
            try:
                commit(call_changes, call_logs)
            except Exception as exc:
                if not dropped:
                    logger.exception("writing the changes of call %s failed", call_uuid)
                dropped.append((call_uuid, [t.to_status.value for _, _, _, t in call_changes],
                                len(call_logs), exc.__class__.__name__))
        if dropped:
            logger.critical("dropped the changes of %d of %d calls (uuid, statuses, log entries, error): %s",
                            len(dropped), len(by_call), dropped)

    def _on_event(self, node: Node, event: Event, changes: list) -> None:
        name = event.name
        if name == "BACKGROUND_JOB":
            call_uuid = self.jobs.get(event.get("Job-UUID") or "")
            live = self.live.get(call_uuid or "")
            if live is not None and not live.channel_seen:
                body = event.body or ""
                if body.strip() == SESSION_REFUSED and self.pacers[live.node].refused(live.uuid):
                    self.inbox.put(("log", live.uuid, "admission", {
                        "note": "FreeSWITCH refused to start the session (DESTINATION_OUT_OF_ORDER: at its "
                                "sessions-per-second or max-sessions limit); it is retried"}))
                    return
                self._transition(live, originate_failed(live.view(), body, datetime.now(timezone.utc)), changes)
            return
        live = self.live.get(event.unique_id or "")
        if live is None:
            if name == "CHANNEL_PARK" and event.get(f"variable_{names.VAR_DIRECTION}") == names.DIRECTION_INBOUND:
                self._accept_inbound(node, event, changes)
            return
        for hook in self.event_hooks:
            try:
                hook(live.uuid, event)
            except Exception:
                logger.exception("event hook failed on %s", name)
        if name == "CHANNEL_CREATE":
            live.channel_seen = True
            return
        self._transition(live, next_transition(live.view(), event), changes)

    def _accept_inbound(self, node: Node, event: Event, changes: list) -> None:
        """A call the dialplan parked for us, still unanswered: record it, then (on a
        greenlet of its own) answer it once ``inbound_screens`` let it through, or refuse it.

        The Call row is created here, on the worker, so it is in place before the
        CHANNEL_ANSWER that our ``uuid_answer`` causes is applied.  A call to a number
        nobody owns gets no Call row (no account to own it), only its ``RefusedCall``."""
        call_uuid = event.unique_id
        if not call_uuid or Call.get_or_none(Call.uuid == call_uuid) is not None:
            return  # a re-delivered park (e.g. after a transfer back to the gateway)
        did = event.get(f"variable_{names.VAR_DID}") or event.get("Caller-Destination-Number") or ""
        inbound = InboundCall(call_uuid, node.name, did, event.get("Caller-Caller-ID-Number") or "",
                              event.get("Caller-Caller-ID-Name") or "")
        variables = {var: event.get(f"variable_{var}") for var in names.CHANNEL_VARIABLES}
        route = route_inbound(did, variables)
        if route.account_id is None:
            self._inbound.spawn(self._refuse_inbound, node, inbound, None, route.refusal)
            return
        Call.create(
            uuid=call_uuid, account=route.account_id, direction="inbound", node=node.name,
            from_number=inbound.from_number, to_number=did, caller_id_name=inbound.caller_id_name,
            socket_url=route.socket_url, webhook_url=route.webhook_url,
        )
        live = LiveCall(call_uuid, node.name, channel_seen=True, generation=node.generation)
        self.live[call_uuid] = live
        self._transition(live, Transition(Status.RINGING, event_time(event), "CHANNEL_PARK",
                                          detail={"note": "inbound call parked by the dialplan", "did": did}), changes)
        if route.refusal is not None:
            self._inbound.spawn(self._refuse_inbound, node, inbound, route.account_id, route.refusal)
        else:
            self._inbound.spawn(self._screen_inbound, node, inbound, route.account_id)

    def _screen_inbound(self, node: Node, inbound: InboundCall, account_id: int) -> None:
        for screen in self.inbound_screens:
            try:
                refusal = screen(inbound.uuid)
            except Exception:  # a call nobody can route is refused, never left ringing
                logger.exception("inbound call %s: screening failed", inbound.uuid)
                refusal = InboundRefusal("screening_failed", UNAVAILABLE)
            if refusal is not None:
                self._refuse_inbound(node, inbound, account_id, refusal)
                return
        if inbound.uuid not in self.live:
            return  # the caller hung up while the screens decided
        self.inbox.put(("log", inbound.uuid, "command", {"command": "answer"}))
        self._inbound_command(node, f"uuid_answer {inbound.uuid}")

    def _refuse_inbound(self, node: Node, inbound: InboundCall, account_id: int | None,
                        refusal: InboundRefusal) -> None:
        """Hang the unanswered call up with ``refusal.cause``, which FreeSWITCH turns into
        the SIP response the caller gets (``gateway.calls.inbound``), and record why."""
        if account_id is not None:
            if inbound.uuid not in self.live:
                return  # the caller hung up first: nothing left to refuse
            self.inbox.put(("log", inbound.uuid, "inbound",
                            {"event": "refused", "reason": refusal.reason, "cause": refusal.cause}))
        logger.info("inbound call %s to %s refused (%s): %s", inbound.uuid, inbound.did, refusal.reason,
                    refusal.cause)
        self._inbound_command(node, f"uuid_kill {inbound.uuid} {refusal.cause}")
        with connection_scope():
            record_refusal(inbound, account_id, refusal)

    @staticmethod
    def _inbound_command(node: Node, command: str) -> None:
        try:
            node.api(command)
        except (LinkDown, CommandTimeout, CommandFailed) as exc:
            logger.warning("inbound call: %s failed: %s", command, exc)

    def _wake_waiters(self, call_uuid: str, event: Event) -> None:
        waiters = self._waiters.get(call_uuid)
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
            self._waiters[call_uuid] = pending
        else:
            del self._waiters[call_uuid]

    def _transition(self, live: LiveCall, transition: Transition | None, changes: list) -> None:
        if transition is None:
            return
        seq, at = live.stamp(transition.at)
        changes.append((live.uuid, live.status.value, seq, dataclasses.replace(transition, at=at)))
        live.status = transition.to_status
        if transition.to_status is Status.RINGING:
            live.rang = True
        elif transition.to_status is Status.IN_PROGRESS:
            live.answered = True

    def _log_unowned(self, call_uuid: str, kind: str, detail: dict) -> None:
        for _ in range(3):
            try:
                store.apply([], [store.log_entry(call_uuid, store.next_seq(call_uuid), kind, detail)])
                return
            except IntegrityError:
                continue  # another process logged at the same seq; take the next one

    # -- reconciliation -------------------------------------------------------------------------
    def _reconcile(self, node: Node, generation: int, changes: list) -> None:
        """Bring the calls of ``node`` in line with what it reports after a (re)connect.

        A call whose channel is still listed but was not known answered is asked about
        with ``uuid_dump`` (``_found_on_reconnect``): an answer FreeSWITCH recorded while we
        were away becomes the call's ``in_progress`` transition, at FreeSWITCH's answer time,
        and goes to the listeners (media session, webhooks) like any answer.  A call whose
        channel is not listed is closed behind the events already queued (``_gone``).

        Runs on the worker, ahead of every event of the new link (``_link_up`` queued it
        before the subscription was sent), so a call is re-attached before its events
        are applied and none of them is dropped as unknown.
        """
        if not node.wait_connected(node.command_timeout) or node.generation != generation:
            return  # this link died already; the next one brings its own reconciliation
        try:
            reply = node.api("show channels as json")
        except (LinkDown, CommandTimeout, CommandFailed) as exc:
            logger.warning("reconcile %s: %s", node.name, exc)
            return
        channels = {row.get("uuid"): row for row in json.loads(reply).get("rows", [])}
        now = datetime.now(timezone.utc)
        gone: list[tuple[LiveCall, Call]] = []
        rows = Call.select().where(Call.node == node.name, Call.status.in_([s.value for s in LIVE]))
        for call in rows:
            live = self.live.get(call.uuid)
            if live is not None and live.generation == generation:
                continue  # originated on this very link: its events are already flowing
            if self.pacers[node.name].waiting(call.uuid):
                continue  # still in line for admission: never sent
            if live is None:
                if call.status == Status.QUEUED.value and call.job_uuid is None:
                    continue  # never sent; the process that queued it will place it
                live = LiveCall(call.uuid, node.name, Status(call.status), Status(call.status),
                                answered=call.answered_at is not None, rang=call.ringing_at is not None,
                                channel_seen=True, seq=store.next_seq(call.uuid) - 1)
                self.live[call.uuid] = live
            live.generation = generation
            row = channels.get(call.uuid)
            if row is None:
                gone.append((live, call))
                continue
            live.channel_seen = True
            if live.status is Status.IN_PROGRESS:
                continue  # nothing it can have done unseen but end, and then it would be gone
            self._transition(live, self._found_on_reconnect(node, live, row, now), changes)
        if gone:
            # Behind every event already received: a channel that just hung up still gets
            # its real CHANNEL_HANGUP_COMPLETE applied first; only the silent ones are closed.
            self.inbox.put(("gone", gone, now))

    @staticmethod
    def _found_on_reconnect(node: Node, live: LiveCall, row: dict, now: datetime) -> Transition | None:
        """What a call still on FreeSWITCH did while we were not listening: answered (at the
        time FreeSWITCH recorded), started ringing, or nothing (``states.found_on_reconnect``).

        The times come from ``uuid_dump``.  If FreeSWITCH cannot dump the channel
        (``-ERR Allocation error``, a timeout), ``show channels``' call state still tells an
        answered call, which then gets the reconcile time, the latest it can have been
        answered.  A channel that hung up since ``show channels`` did so while this link
        listened (the subscription precedes ``connected``): its own CHANNEL_HANGUP_COMPLETE
        is on the way and ends the call with FreeSWITCH's figures."""
        try:
            dump = node.api(f"uuid_dump {live.uuid} json")
            return found_on_reconnect(live.view(), Event(dump.encode(), is_json=True))
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

    @staticmethod
    def _gone(live: LiveCall, call: Call, now: datetime) -> Transition:
        """The channel vanished while we were not listening (FreeSWITCH restart, link loss,
        the gateway down): ``states.channel_vanished`` says what can be known."""
        return channel_vanished(live.view(), call.created_at, call.answered_at, now)


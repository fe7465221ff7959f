"""The Event Socket server: one ``Listener`` per inbound connection, as mod_event_socket.

Per connection: ``auth/request`` on connect; commands are read with the IO-free
``CommandReader`` and answered in order (one reply each); ``api`` runs in the reading
greenlet, so nothing else is written on that connection until its ``api/response`` (events
wait in the queue); events are written whenever no command is running.  Reply texts are
mod_event_socket's (research/freeswitch.md §1.5-§1.6 and fs-captures/esl_edge_replies).
"""

from __future__ import annotations

import logging
from collections import deque

import gevent
from gevent.event import Event as GEvent
from gevent.lock import Semaphore
from gevent.server import StreamServer

from gateway.esl.protocol import (
    DISCONNECT_GOODBYE,
    CommandReader,
    ProtocolError,
    frame_api_response,
    frame_auth_request,
    frame_disconnect_notice,
    frame_reply,
)

from . import api as api_commands
from .subscriptions import Subscription

logger = logging.getLogger(__name__)

LOG_LEVELS = {"console": 0, "alert": 1, "crit": 2, "err": 3, "error": 3, "warning": 4, "notice": 5,
              "info": 6, "debug": 7}


class Listener:
    def __init__(self, sim, sock, address) -> None:
        self.sim = sim
        self.sock = sock
        self.address = address
        self.sub = Subscription()
        self.authed = False
        self.queue: deque = deque()
        self.busy = False
        self.closed = False
        self.wakeup = GEvent()
        self.write_lock = Semaphore()
        self.write_delay = sim.write_delay
        self.session_uuid: str | None = None
        self.linger: int | None = None
        self.log_level: int | None = None
        self.reader = CommandReader()
        self.flusher: gevent.Greenlet | None = None

    # -- bus side -------------------------------------------------------------------------
    def wants(self, name: str, subclass: str | None) -> bool:
        return self.authed and not self.closed and self.sub.wants(name, subclass)

    def deliver(self, event) -> None:
        if self.sub.passes(event):
            self.queue.append(event)
            self.wakeup.set()

    def deliver_log(self, line) -> None:
        """``socket_logger``: a ``logs.LogLine`` goes to a connection whose ``log`` level takes it."""
        if self.authed and not self.closed and self.log_level is not None and line.level <= self.log_level:
            self.queue.append(line)
            self.wakeup.set()

    # -- writing --------------------------------------------------------------------------
    def write(self, data: bytes) -> None:
        if self.closed:
            return
        with self.write_lock:
            if self.write_delay:
                gevent.sleep(self.write_delay)
            if self.closed:
                return
            try:
                self.sock.sendall(data)
            except OSError:
                self.close()

    def _flush_loop(self) -> None:
        while not self.closed:
            self.wakeup.wait()
            self.wakeup.clear()
            while self.queue and not self.busy and not self.closed:
                event = self.queue.popleft()
                self.write(event.framed(self.sub.fmt))

    def flush_now(self) -> None:
        while self.queue and not self.closed:
            self.write(self.queue.popleft().framed(self.sub.fmt))

    def reply(self, text: str, extra=()) -> None:
        self.write(frame_reply(text, extra))

    def disconnect(self, text: str = DISCONNECT_GOODBYE) -> None:
        """The disconnect notice, then close at once (greenswitch does not read its body)."""
        if self.session_uuid:
            data = text.encode("utf-8")
            head = (b"Content-Type: text/disconnect-notice\nControlled-Session-UUID: %s\n"
                    b"Content-Disposition: disconnect\nContent-Length: %d\n\n")
            self.write(head % (self.session_uuid.encode(), len(data)) + data)
        else:
            self.write(frame_disconnect_notice(text))
        self.close()

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        self.wakeup.set()
        try:
            self.sock.close()
        except OSError:
            pass
        self.sim._listener_gone(self)

    def crash(self) -> None:
        """Drop the connection with no further bytes (simulator stop)."""
        self.closed = True
        self.wakeup.set()
        try:
            self.sock.close()
        except OSError:
            pass

    # -- reading --------------------------------------------------------------------------
    def run(self) -> None:
        self.flusher = gevent.spawn(self._flush_loop)
        try:
            self.write(frame_auth_request())
            first = True
            while not self.closed:
                self.sim._reading_allowed.wait()
                try:
                    if first and self.sim.auth_timeout:
                        with gevent.Timeout(self.sim.auth_timeout):
                            data = self.sock.recv(65536)
                    else:
                        data = self.sock.recv(65536)
                except gevent.Timeout:
                    self.disconnect()
                    break
                except OSError:
                    break
                if not data:
                    break
                if self.sim.received is not None:
                    self.sim.received += data
                try:
                    commands = self.reader.feed(data)
                except ProtocolError:
                    break
                for cmd in commands:
                    first = False
                    if self.closed:
                        break
                    self.sim._reading_allowed.wait()
                    self.busy = True
                    try:
                        self.handle(cmd)
                    finally:
                        self.busy = False
                        self.wakeup.set()
        finally:
            self.close()
            if self.flusher is not None:
                self.flusher.kill(block=False)

    def handle(self, cmd) -> None:
        line = cmd.line
        word, _, rest = line.partition(" ")
        word = word.lower()
        if word in ("exit", "..."):
            self.reply("+OK bye")
            self.disconnect()
            return
        if not self.authed:
            if word == "auth":
                if rest.strip() == self.sim.password:
                    self.authed = True
                    self.reply("+OK accepted")
                else:
                    self.reply("-ERR invalid")
                    self.disconnect()
                return
            if word == "userauth":
                self.reply("-ERR invalid")
                self.disconnect()
                return
            self.reply("-ERR command not found")
            return
        handler = getattr(self, "cmd_" + word, None)
        if handler is None:
            self.reply("-ERR command not found")
            return
        handler(rest, cmd)

    # -- commands -------------------------------------------------------------------------
    def cmd_auth(self, rest, cmd) -> None:
        self.reply("-ERR command not found")

    def cmd_api(self, rest, cmd) -> None:
        name, _, args = rest.strip().partition(" ")
        if not name:
            self.reply("-ERR command not found")
            return
        body = self.sim.run_api(name, args)
        self.write(frame_api_response(body))

    def cmd_bgapi(self, rest, cmd) -> None:
        name, _, args = rest.strip().partition(" ")
        if not name:
            self.reply("-ERR command not found")
            return
        job = cmd.header("Job-UUID") or api_commands.new_job_uuid()
        self.reply(f"+OK Job-UUID: {job}", [("Job-UUID", job)])
        # mod_event_socket adds Job-Owner-UUID when the listener controls a session (myevents <uuid>)
        self.sim.run_bgapi(name, args, job, owner=self.session_uuid)

    def cmd_event(self, rest, cmd) -> None:
        self.reply(self.sub.event(rest))

    def cmd_nixevent(self, rest, cmd) -> None:
        self.reply(self.sub.nixevent(rest))

    def cmd_noevents(self, rest, cmd) -> None:
        self.reply(self.sub.noevents())

    def cmd_filter(self, rest, cmd) -> None:
        self.reply(self.sub.filter(rest))

    def cmd_myevents(self, rest, cmd) -> None:
        if self.sub.myevents_uuid is not None:
            self.reply("-ERR aready enabled.")
            return
        uuid, _, fmt = rest.strip().partition(" ")
        if not uuid or uuid not in self.sim.channels:
            self.reply("-ERR invalid uuid")
            return
        # FreeSWITCH truncates the command before looking for the format word (inbound).
        self.session_uuid = uuid
        self.sub.bind_myevents(uuid)
        self.reply("+OK Events Enabled")

    def cmd_divert_events(self, rest, cmd) -> None:
        if not self.session_uuid:
            self.reply("-ERR not controlling a session.")
        elif not rest.strip():
            self.reply("-ERR missing value.")
        elif rest.strip().lower() == "on":
            self.reply("+OK events diverted")
        else:
            self.reply("+OK events not diverted")

    def cmd_linger(self, rest, cmd) -> None:
        if not self.session_uuid:
            self.reply("-ERR not controlling a session")
            return
        value = rest.strip()
        if value.lstrip("-").isdigit():
            self.linger = int(value)
            self.reply(f"+OK will linger {self.linger} seconds")
        else:
            self.linger = -1
            self.reply("+OK will linger")

    def cmd_nolinger(self, rest, cmd) -> None:
        if not self.session_uuid:
            self.reply("-ERR not controlling a session")
            return
        self.linger = None
        self.reply("+OK will not linger")

    def cmd_log(self, rest, cmd) -> None:
        level = rest.strip().lower() or "debug"
        if level.isdigit():
            number = int(level)
            names = {v: k for k, v in LOG_LEVELS.items() if k != "error"}
            level = names.get(number, "debug")
        if level not in LOG_LEVELS:
            self.reply("-ERR invalid log level")
            return
        self.log_level = LOG_LEVELS[level]
        self.reply(f"+OK log level {level} [{self.log_level}]")

    def cmd_nolog(self, rest, cmd) -> None:
        if self.log_level is None:
            self.reply("-ERR not loging")
            return
        self.log_level = None
        self.reply("+OK no longer logging")

    def cmd_sendmsg(self, rest, cmd) -> None:
        uuid = rest.strip() or cmd.header("session-id") or self.session_uuid or ""
        ch = self.sim.channels.get(uuid)
        if ch is None or ch.session is None:
            self.reply(f"-ERR invalid session id [{uuid}]")
            return
        self.sim._queue_message(ch.session, cmd)
        self.reply("+OK")

    def cmd_sendevent(self, rest, cmd) -> None:
        name = (rest.strip().split() or ["CUSTOM"])[0].upper()
        event_uuid = api_commands.new_job_uuid()
        self.sim.send_event(name, list(cmd.headers.items()), cmd.body.decode("utf-8", "replace") or None, event_uuid)
        self.reply(f"+OK {event_uuid}")

    # -- a bound channel went away (myevents <uuid>) --------------------------------------------
    def session_gone(self, channel) -> None:
        if self.closed:
            return
        if self.linger is not None:
            data = (b"Content-Type: text/disconnect-notice\nControlled-Session-UUID: %s\nContent-Disposition: linger\n"
                    b"Channel-Name: %s\nLinger-Time: %d\nContent-Length: 0\n\n"
                    % (channel.uuid.encode(), channel.name.encode(), self.linger))
            gevent.spawn(self._linger_then_close, data, self.linger)
            return
        gevent.spawn(self._drain_then_close)

    def _drain_then_close(self) -> None:
        while self.busy and not self.closed:
            gevent.sleep(0.001)
        self.flush_now()
        self.disconnect()

    def _linger_then_close(self, notice: bytes, seconds: int) -> None:
        self.flush_now()
        self.write(notice)
        if seconds >= 0:
            gevent.sleep(seconds)
            self.flush_now()
            self.disconnect()


class EslServer:
    """The listening socket (gevent ``StreamServer``)."""

    def __init__(self, sim, host: str, port: int) -> None:
        self.sim = sim
        self.server = StreamServer((host, port), self._handle)

    def start(self) -> int:
        self.server.start()
        return self.server.server_port

    def _handle(self, sock, address) -> None:
        listener = Listener(self.sim, sock, address)
        self.sim._listener_added(listener)
        listener.run()

    def stop(self) -> None:
        self.server.close()

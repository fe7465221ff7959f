"""What every bot connector shares: the outgoing WebSocket, the link interface, errors.

A ``BotLink`` is one open connection to a bot, owned by one call's media session:

* the session calls ``send_audio`` (20 ms of caller mu-law), ``send_dtmf``,
  ``mark_played`` (a bot's mark whose audio has played) and ``close``; these never
  block.  When nothing is queued and the socket takes the whole message at once it is
  sent there and then (no switch to another greenlet: this is most messages); else it
  queues, and the link's writer greenlet sends in order, so a slow bot cannot stall the
  caller's audio (a full queue drops the oldest audio and counts it).  A connector's
  control answers (a provider's ``pong``, a tool's result) are queued ``urgent``: they go
  out ahead of the queued audio, after at most the one frame already half on the wire;
* the link's reader greenlet turns what the bot sends into ``twilio.BotEvent``s (Media,
  Mark, Clear, Transcript, ProtocolIssue, Closed) and hands them to ``on_event``;
* a bot that stops reading is found out: the link pings every ``PING_INTERVAL`` seconds
  (a WebSocket library answers pings from its reader, so pongs stop when the bot stops
  reading) and a ping left unanswered for ``READ_STALL_LIMIT`` seconds ends the link with
  an unclean ``Closed`` (the session's failure policy takes it from there: within 10 s).
  The socket's send buffer is kept small (``SEND_BUFFER_BYTES``) so that the caller
  audio a stalled bot would get late stays in the link's bounded queue, where the
  oldest is dropped, instead of piling up in the kernel.

Outgoing sockets use websocket-client (ARCHITECTURE.md: real dependencies for real jobs),
with a connect timeout; once open, reads and writes wait with no timeout (a timeout
would cost a gevent timer on every wait, 50 times a second per call): the ping watch
above is what finds a bot that stopped reading, and it shuts the socket, which ends any
wait.  Under gevent each blocking call only blocks its own greenlet.  ``TCP_NODELAY`` is
set: a 20 ms frame must not wait for the previous one's ACK.
"""

from __future__ import annotations

import logging
import socket
import ssl
import struct
import time
from abc import ABC, abstractmethod
from collections import deque
from dataclasses import dataclass, field
from typing import Callable
from urllib.parse import urlsplit, urlunsplit

import gevent
import websocket
from gevent.event import Event as Flag

from gateway.media.twilio import MAX_MESSAGE_CHARS, BotEvent, Closed, ProtocolIssue

logger = logging.getLogger(__name__)

MAX_QUEUED_AUDIO = 100  # 2 s of 20 ms frames waiting for a slow bot, then the oldest go
PING_INTERVAL = 2.0
READ_STALL_LIMIT = 8.0  # a ping unanswered this long (+ up to one interval): the bot stopped reading
SEND_BUFFER_BYTES = 32 * 1024  # about 2.5 s of Twilio media messages
READ_BYTES = 65536
DIRECT = frozenset({"audio", "dtmf", "mark"})  # what may be sent from the caller's greenlet
YIELD_EVERY = 16  # messages the reader handles before it lets the other calls' greenlets run
YIELD_SECONDS = 0.0001  # a timer, so the loop polls the other sockets first (sleep(0) would not)


class WouldBlock(Exception):
    """A send that could not complete without waiting; ``rest`` is what was not sent."""

    def __init__(self, rest: bytes) -> None:
        super().__init__(len(rest))
        self.rest = rest


class BotUnavailable(Exception):
    """The bot could not be reached (refused, timed out, upgrade refused, API error)."""


@dataclass(frozen=True)
class CallInfo:
    """What a connector may tell the bot about the call."""

    call_uuid: str
    account_id: str
    direction: str = "outbound"
    from_number: str = ""
    to_number: str = ""
    custom_args: dict = field(default_factory=dict)


def redact(url: str) -> str:
    """A URL fit for logs: no userinfo, no query (tokens live there)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<invalid url>"
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, host, parts.path, "…" if parts.query else "", ""))


class _BufferedReads:
    """A socket whose ``recv`` reads up to ``READ_BYTES`` at a time and hands out what is
    asked from that.  websocket-client reads a frame in pieces (its header, its length,
    its payload), each a ``recv`` of its own: about five system calls per bot message
    instead of one.  Everything else goes to the socket itself."""

    def __init__(self, sock) -> None:
        self._sock = sock
        self._buf = b""
        self._at = 0

    def recv(self, size: int) -> bytes:
        if self._at >= len(self._buf):
            data = self._sock.recv(READ_BYTES)
            if len(data) <= size:
                return data
            self._buf, self._at = data, 0
        out = self._buf[self._at:self._at + size]
        self._at += len(out)
        return out

    def __getattr__(self, name):
        return getattr(self._sock, name)


class WsChannel:
    """A client WebSocket (websocket-client) with message-level receive.

    Given ``ws`` (an upgraded socket: a customer's bot, opened by ``guarded``), it takes
    that one; else it connects to ``url`` itself (a provider's URL from the settings)."""

    def __init__(self, url: str, *, headers: list[str] | None = None, connect_timeout: float = 3.0,
                 ws: websocket.WebSocket | None = None) -> None:
        self.url = url
        if ws is not None:
            self.ws = ws
        else:
            try:
                self.ws = websocket.create_connection(url, timeout=connect_timeout, header=headers or [],
                                                      enable_multithread=True, skip_utf8_validation=True)
            except websocket.WebSocketBadStatusException as exc:
                raise BotUnavailable(f"upgrade refused: HTTP {exc.status_code}") from None
            except (OSError, websocket.WebSocketException, gevent.Timeout) as exc:
                raise BotUnavailable(_describe(exc)) from None
        self.ws.settimeout(None)
        self._sock = self.ws.sock
        self.ws.sock = _BufferedReads(self._sock)
        self.last_pong = time.monotonic()
        self.nowait = False  # set by the link around a send that must not wait (``WouldBlock``)
        try:
            self.ws.sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SEND_BUFFER_BYTES)
            self.ws.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except (AttributeError, OSError):
            pass

    def ping(self) -> None:
        self.ws.ping(b"voicegw")

    def send_text(self, text: str) -> None:
        self._send(websocket.ABNF.create_frame(text, websocket.ABNF.OPCODE_TEXT))

    def send_binary(self, data: bytes) -> None:
        self._send(websocket.ABNF.create_frame(data, websocket.ABNF.OPCODE_BINARY))

    def send_raw(self, data: bytes) -> None:
        """The rest of a frame a ``WouldBlock`` left unsent."""
        with self.ws.lock:
            self._sock.sendall(data)

    @property
    def can_send_nowait(self) -> bool:
        """A plain socket (a TLS one may need to read to write: always the writer's job)."""
        return not isinstance(self._sock, ssl.SSLSocket) and hasattr(self.ws.lock, "acquire")

    def _send(self, frame) -> None:
        if not self.nowait:
            self.ws.send_frame(frame)
            return
        data = frame.format()
        lock = self.ws.lock
        if not lock.acquire(blocking=False):  # websocket-client's own pong is being written
            raise WouldBlock(data)
        try:
            try:
                sent = self._sock.send(data, 0, 0.0)  # timeout 0: never wait here
            except BlockingIOError:
                sent = 0
        finally:
            lock.release()
        if sent < len(data):
            raise WouldBlock(data[sent:])

    def receive(self) -> tuple:
        """("text", str) | ("binary", bytes) | ("too_large", size) | ("closed", code, reason, clean).

        A message over ``twilio.MAX_MESSAGE_CHARS`` bytes is not decoded: it is reported
        by its size (websocket-client has read it whole by then; it has no size cap)."""
        while True:
            try:
                opcode, frame = self.ws.recv_data_frame(True)
            except websocket.WebSocketConnectionClosedException:
                return ("closed", 1006, "connection lost", False)
            except (OSError, websocket.WebSocketException) as exc:
                return ("closed", 1006, _describe(exc), False)
            if opcode in (websocket.ABNF.OPCODE_TEXT, websocket.ABNF.OPCODE_BINARY) and \
                    len(frame.data) > MAX_MESSAGE_CHARS:
                return ("too_large", len(frame.data))
            if opcode == websocket.ABNF.OPCODE_TEXT:
                return ("text", frame.data.decode("utf-8", "replace"))
            if opcode == websocket.ABNF.OPCODE_BINARY:
                return ("binary", bytes(frame.data))
            if opcode == websocket.ABNF.OPCODE_PONG:
                self.last_pong = time.monotonic()
                continue
            if opcode == websocket.ABNF.OPCODE_CLOSE:
                data = frame.data or b""
                code = struct.unpack("!H", data[:2])[0] if len(data) >= 2 else 1005
                reason = data[2:].decode("utf-8", "replace")
                self.shutdown()
                return ("closed", code, reason, code in (1000, 1001))

    def close(self, code: int = 1000) -> None:
        try:
            if self.ws.connected:
                self.ws.close(status=code, timeout=1)
        except (OSError, websocket.WebSocketException):
            pass
        self.shutdown()

    def shutdown(self) -> None:
        try:
            self.ws.shutdown()
        except (OSError, websocket.WebSocketException):
            pass


def _describe(exc: BaseException) -> str:
    if isinstance(exc, (TimeoutError, websocket.WebSocketTimeoutException, gevent.Timeout)):
        return "timed out"
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    text = str(exc) or type(exc).__name__
    return text[:200]


class BotLink(ABC):
    """One open connection to a bot; see the module docstring."""

    kind = "websocket"

    def __init__(self, label: str) -> None:
        self.label = label  # for logs: redacted URL or provider + id
        self.on_event: Callable[[BotEvent], None] = lambda event: None
        self.sent_audio = 0
        self.dropped_audio = 0
        self.dropped_audio_bytes = 0  # a Twilio stream's media.timestamp leaves their gap
        self.closed = False
        self._outbox: deque = deque()
        self._urgent: deque = deque()  # control answers, sent before the outbox's audio
        self._queued_audio = 0
        self._gone = False  # the socket is finished: the writer stops
        self._busy = False  # the writer is in a send (which may wait)
        self._direct = False  # messages may be sent from the caller's greenlet
        self._wake = Flag()
        self._greenlets: list[gevent.Greenlet] = []

    # -- session side ---------------------------------------------------------------------
    def start(self, on_event: Callable[[BotEvent], None]) -> None:
        self.on_event = on_event
        channel = getattr(self, "channel", None)
        self._direct = channel is not None and channel.can_send_nowait
        self._greenlets = [gevent.spawn(self._read_loop), gevent.spawn(self._write_loop),
                           gevent.spawn(self._watch_loop)]

    def send_audio(self, ulaw: bytes) -> None:
        self._queue(("audio", ulaw))

    def send_dtmf(self, digit: str) -> None:
        self._queue(("dtmf", digit))

    def mark_played(self, name: str) -> None:
        self._queue(("mark", name))

    def close(self, stop: bool = True) -> None:
        """Say goodbye (``stop`` for a Twilio bot) after what is queued, then close."""
        if self.closed:
            return
        self.closed = True
        self._queue(("close", stop))

    def final_transcript(self) -> list[dict] | None:
        """The provider's own record of the conversation, read after the call (may block
        for a while); None: the lines the socket gave stand (the default)."""
        return None

    def kill(self) -> None:
        self.closed = True
        self._gone = True
        for greenlet in self._greenlets:
            greenlet.kill(block=False)
        self._abort()

    # -- connector side -------------------------------------------------------------------
    channel: "WsChannel"  # every connector talks to its peer over one WebSocket

    def _read_loop(self) -> None:
        """Read until the socket ends; report ``Closed`` last (unless we closed it).  Every
        ``YIELD_EVERY`` messages it lets the other greenlets run: messages already
        buffered are read without waiting, and a flooding bot must not starve other calls."""
        handled = 0
        while True:
            message = self.channel.receive()
            if message[0] == "closed":
                _, code, reason, clean = message
                self._closed_by_peer(code, reason, clean)
                return
            if self._gone:
                return
            if message[0] == "too_large":
                events = [ProtocolIssue(f"message of {message[1]} bytes is over the {MAX_MESSAGE_CHARS} limit")]
            else:
                events = self._events(message[0], message[1])
            for event in events:
                self._emit(event)
            handled += 1
            if handled % YIELD_EVERY == 0:
                gevent.sleep(YIELD_SECONDS)

    @abstractmethod
    def _events(self, kind: str, data: str | bytes) -> list[BotEvent]:
        """What one message from the peer means (``kind`` "text" or "binary"); never raises."""

    @abstractmethod
    def _send(self, kind: str, value) -> None:
        """Send one queued item ("audio", "dtmf", "mark"); may block."""

    @abstractmethod
    def _goodbye(self, stop: bool) -> None:
        """Close the connection politely."""

    def _abort(self) -> None:
        """Close the connection at once."""

    def _emit(self, event: BotEvent) -> None:
        try:
            self.on_event(event)
        except Exception:  # the session's bug must not kill the reader silently
            logger.exception("%s: handling %r failed", self.label, event)

    def _end(self, reason: str) -> None:
        """End the link from this side, for ``reason`` (the call's log shows it): reported
        as an unclean ``Closed``, so the session's failure policy applies."""
        self._gone = True
        self._abort()
        self._closed_by_peer(1006, reason, False)

    def _closed_by_peer(self, code: int, reason: str, clean: bool) -> None:
        """The socket ended.  Reported once, and only if we had not closed it ourselves."""
        self._gone = True
        self._wake.set()
        if not self.closed:
            self.closed = True
            self._emit(Closed(code, reason, clean))

    def _watch_loop(self) -> None:
        """Ping the bot; a ping unanswered for ``READ_STALL_LIMIT`` s means it stopped reading."""
        unanswered_since: float | None = None
        while not self._gone:
            gevent.sleep(PING_INTERVAL)
            if self._gone:
                return
            now = time.monotonic()
            if unanswered_since is not None and self.channel.last_pong >= unanswered_since:
                unanswered_since = None
            if unanswered_since is not None and now - unanswered_since >= READ_STALL_LIMIT:
                logger.info("%s: no pong for %.0f s: the bot stopped reading", self.label, now - unanswered_since)
                self._end(f"the bot stopped reading (no pong for {now - unanswered_since:.0f} s)")
                return
            if unanswered_since is None:
                unanswered_since = now
            self._queue(("ping", None))

    # -- internals ------------------------------------------------------------------------
    def _queue(self, item, urgent: bool = False) -> None:
        """Send ``item`` now if that needs no wait, else queue it for the writer; an
        ``urgent`` one goes ahead of the queued audio (see the module docstring)."""
        if (item[0] == "audio" or urgent) and self.closed:
            return
        if (urgent or item[0] in DIRECT) and self._direct and not self._outbox and not self._urgent \
                and not self._busy and not self.closed:
            item = self._send_now(item)
            if item is None:
                return
            if item[0] == "raw":  # the rest of a frame: nothing may go before it
                urgent = False
        if urgent:
            self._urgent.append(item)
            self._wake.set()
            return
        if item[0] == "audio":
            if self._queued_audio >= MAX_QUEUED_AUDIO:
                for i, (kind, value) in enumerate(self._outbox):
                    if kind == "audio":
                        del self._outbox[i]
                        self._queued_audio -= 1
                        self.dropped_audio += 1
                        self.dropped_audio_bytes += len(value)
                        break
            self._queued_audio += 1
        self._outbox.append(item)
        self._wake.set()

    def _send_now(self, item):
        """Send ``item`` from this greenlet if that needs no wait; returns what is left
        for the writer (None: sent).  A failure is left for the writer to find and report."""
        kind, value = item
        self.channel.nowait = True
        try:
            self._send(kind, value)
        except WouldBlock as exc:
            return ("raw", exc.rest)
        except Exception:
            return item
        finally:
            self.channel.nowait = False
        if kind == "audio":
            self.sent_audio += 1
        return None

    def _next_item(self):
        """The rest of a half-sent frame first, then the urgent answers, then the outbox."""
        if self._urgent and not (self._outbox and self._outbox[0][0] == "raw"):
            return self._urgent.popleft()
        return self._outbox.popleft()

    def _write_loop(self) -> None:
        while True:
            while not self._outbox and not self._urgent:
                if self._gone:
                    return
                self._wake.clear()
                self._wake.wait()
            kind, value = self._next_item()
            if kind == "audio":
                self._queued_audio -= 1
            if self._gone:
                return
            try:
                if kind == "close":
                    self._goodbye(value)
                    self._gone = True
                    return
                if kind == "ping":
                    self.channel.ping()
                    continue
                self._busy = True
                if kind == "raw":
                    self.channel.send_raw(value)
                else:
                    self._send(kind, value)
                if kind == "audio":
                    self.sent_audio += 1
            except Exception as exc:  # the bot stopped reading or went away
                logger.info("%s: send failed: %s", self.label, exc)
                self._abort()
                self._closed_by_peer(1006, f"send failed: {_describe(exc)}", False)
                return
            finally:
                self._busy = False

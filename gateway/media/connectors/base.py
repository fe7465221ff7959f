"""What every bot connector shares: the outgoing WebSocket, the link interface, errors.

A ``BotLink`` is one open connection to a bot, owned by one call's media session:

* the session calls ``send_audio`` (20 ms of caller mu-law), ``send_dtmf``,
  ``mark_played`` (a bot's mark whose audio has played) and ``close``; these never
  block: they queue, and the link's writer greenlet sends in order, so a slow bot cannot
  stall the caller's audio (a full queue drops the oldest audio and counts it);
* the link's reader greenlet turns what the bot sends into ``twilio.BotEvent``s (Media,
  Mark, Clear, Transcript, ProtocolIssue, Closed) and hands them to ``on_event``.

Outgoing sockets use websocket-client (ARCHITECTURE.md: real dependencies for real jobs),
with a connect timeout and a write timeout; under gevent each blocking call only blocks
its own greenlet.
"""

from __future__ import annotations

import logging
import struct
from abc import ABC, abstractmethod
from collections import deque
from dataclasses import dataclass, field
from typing import Callable
from urllib.parse import urlsplit, urlunsplit

import gevent
import websocket
from gevent.event import Event as Flag

from gateway.media.twilio import BotEvent, Closed

logger = logging.getLogger(__name__)

MAX_QUEUED_AUDIO = 100  # 2 s of 20 ms frames waiting for a slow bot, then the oldest go


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


class WsChannel:
    """A client WebSocket (websocket-client) with message-level receive.

    Given ``ws`` (an upgraded socket: a customer's bot, opened by ``guarded``), it takes
    that one; else it connects to ``url`` itself (a provider's URL from the settings)."""

    def __init__(self, url: str, *, headers: list[str] | None = None, connect_timeout: float = 3.0,
                 io_timeout: float = 10.0, ws: websocket.WebSocket | None = None) -> None:
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
        self.ws.settimeout(io_timeout)

    def send_text(self, text: str) -> None:
        self.ws.send(text)

    def send_binary(self, data: bytes) -> None:
        self.ws.send_binary(data)

    def receive(self) -> tuple:
        """("text", str) | ("binary", bytes) | ("closed", code, reason, clean)."""
        while True:
            try:
                opcode, frame = self.ws.recv_data_frame(False)
            except websocket.WebSocketTimeoutException:
                continue  # a quiet bot is fine
            except websocket.WebSocketConnectionClosedException:
                return ("closed", 1006, "connection lost", False)
            except (OSError, websocket.WebSocketException) as exc:
                return ("closed", 1006, _describe(exc), False)
            if opcode == websocket.ABNF.OPCODE_TEXT:
                return ("text", frame.data.decode("utf-8", "replace"))
            if opcode == websocket.ABNF.OPCODE_BINARY:
                return ("binary", bytes(frame.data))
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
        self.closed = False
        self._outbox: deque = deque()
        self._queued_audio = 0
        self._gone = False  # the socket is finished: the writer stops
        self._wake = Flag()
        self._greenlets: list[gevent.Greenlet] = []

    # -- session side ---------------------------------------------------------------------
    def start(self, on_event: Callable[[BotEvent], None]) -> None:
        self.on_event = on_event
        self._greenlets = [gevent.spawn(self._read_loop), gevent.spawn(self._write_loop)]

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

    def kill(self) -> None:
        self.closed = True
        self._gone = True
        for greenlet in self._greenlets:
            greenlet.kill(block=False)
        self._abort()

    # -- connector side -------------------------------------------------------------------
    channel: "WsChannel"  # every connector talks to its peer over one WebSocket

    def _read_loop(self) -> None:
        """Read until the socket ends; report ``Closed`` last (unless we closed it)."""
        while True:
            message = self.channel.receive()
            if message[0] == "closed":
                _, code, reason, clean = message
                self._closed_by_peer(code, reason, clean)
                return
            if self._gone:
                return
            for event in self._events(message[0], message[1]):
                self._emit(event)

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

    def _closed_by_peer(self, code: int, reason: str, clean: bool) -> None:
        """The socket ended.  Reported once, and only if we had not closed it ourselves."""
        self._gone = True
        self._wake.set()
        if not self.closed:
            self.closed = True
            self._emit(Closed(code, reason, clean))

    # -- internals ------------------------------------------------------------------------
    def _queue(self, item) -> None:
        if item[0] == "audio":
            if self.closed:
                return
            if self._queued_audio >= MAX_QUEUED_AUDIO:
                for i, (kind, _) in enumerate(self._outbox):
                    if kind == "audio":
                        del self._outbox[i]
                        self._queued_audio -= 1
                        self.dropped_audio += 1
                        break
            self._queued_audio += 1
        self._outbox.append(item)
        self._wake.set()

    def _write_loop(self) -> None:
        while True:
            while not self._outbox:
                if self._gone:
                    return
                self._wake.clear()
                self._wake.wait()
            kind, value = self._outbox.popleft()
            if kind == "audio":
                self._queued_audio -= 1
            if self._gone:
                return
            try:
                if kind == "close":
                    self._goodbye(value)
                    self._gone = True
                    return
                self._send(kind, value)
                if kind == "audio":
                    self.sent_audio += 1
            except Exception as exc:  # the bot stopped reading or went away
                logger.info("%s: send failed: %s", self.label, exc)
                self._abort()
                self._closed_by_peer(1006, f"send failed: {_describe(exc)}", False)
                return

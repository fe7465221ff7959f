"""One inbound Event Socket connection, built on greenswitch's ``InboundESL``.

greenswitch gives us the connection object the rest of the ecosystem knows, but its
reader has four faults a call controller cannot live with (research/freeswitch.md §5):
it waits forever for replies, leaves pending commands hanging when FreeSWITCH dies,
URL-decodes a whole header block before splitting it (event bodies and encoded
newlines leak into headers) and only understands ``event plain`` line by line.  This
subclass keeps greenswitch's connection and command bookkeeping and replaces the reader
with ``protocol.MessageReader``: the reader greenlet only frames bytes and hands
unparsed ``Event`` objects to a callback, so it never falls behind FreeSWITCH's
500-event limit because of a slow consumer.
"""

from __future__ import annotations

import logging
from typing import Callable

import gevent
import gevent.socket as gsocket
from gevent.event import AsyncResult
from greenswitch.esl import InboundESL, NotConnectedError

from gateway.esl.protocol import Event, Message, MessageReader, ProtocolError, encode_command

logger = logging.getLogger(__name__)

EVENT_TYPES = ("text/event-plain", "text/event-json")


class LinkDown(NotConnectedError):
    """The connection to FreeSWITCH is gone; a pending or new command cannot complete."""


class CommandTimeout(Exception):
    """FreeSWITCH did not answer a command in time (the connection is considered dead)."""


class CommandFailed(Exception):
    """FreeSWITCH answered ``-ERR …``; ``reply`` holds its exact text."""

    def __init__(self, command: str, reply: str) -> None:
        super().__init__(f"{command.split(' ', 1)[0]}: {reply.strip()}")
        self.command = command
        self.reply = reply


class ESLLink(InboundESL):
    """An authenticated inbound ESL connection with timeouts and a framing reader.

    ``on_event(event)`` is called from the reader greenlet for every event and must not
    block; ``on_close(reason)`` once, when the connection ends for any reason.
    """

    def __init__(
        self,
        host: str,
        port: int,
        password: str,
        on_event: Callable[[Event], None],
        on_close: Callable[[str], None] | None = None,
        timeout: float = 5.0,
    ) -> None:
        super().__init__(host, port, password, timeout=timeout)
        self.on_event = on_event
        self.on_close = on_close
        self._reader = MessageReader()
        self._closed = False
        self.sock = None

    # -- connection -----------------------------------------------------------------
    def connect(self) -> None:
        """Connect and authenticate, within ``timeout`` seconds overall."""
        self.sock = gsocket.create_connection((self.host, self.port), timeout=self.timeout)
        self.sock.setsockopt(gsocket.IPPROTO_TCP, gsocket.TCP_NODELAY, 1)
        self.sock.settimeout(None)
        self.connected = True
        self._receive_events_greenlet = gevent.spawn(self.receive_events)
        if not self._auth_request_event.wait(self.timeout) or not self.connected:
            self.close("no auth/request from FreeSWITCH")
            raise LinkDown(f"{self.host}:{self.port} did not ask for authentication")
        reply = self.send(f"auth {self.password}")
        if reply.reply_text != "+OK accepted":
            self.close("authentication refused")
            raise ValueError(f"FreeSWITCH at {self.host}:{self.port} refused the ESL password")

    def close(self, reason: str = "closed by us") -> None:
        if self._closed:
            return
        self._closed = True
        self.connected = False
        self._run = False
        if self.sock is not None:
            try:
                self.sock.close()
            except OSError:
                pass
        pending, self._commands_sent = self._commands_sent, []
        for result in pending:
            result.set_exception(LinkDown(reason))
        if self.on_close is not None:
            self.on_close(reason)

    stop = close

    # -- reading ----------------------------------------------------------------------
    def receive_events(self) -> None:
        reason = "connection closed by FreeSWITCH"
        try:
            while self._run:
                data = self.sock.recv(262144)
                if not data:
                    break
                for message in self._reader.feed(data):
                    self._dispatch(message)
        except ProtocolError as exc:
            reason = f"protocol error: {exc}"
            logger.error("ESL %s:%s %s", self.host, self.port, reason)
        except OSError as exc:
            reason = f"socket error: {exc}"
        self.close(reason)

    def _dispatch(self, message: Message) -> None:
        content_type = message.content_type
        if content_type in EVENT_TYPES:
            self.on_event(Event.from_message(message))
        elif content_type in ("command/reply", "api/response"):
            if self._commands_sent:
                self._commands_sent.pop(0).set(message)
            else:
                logger.warning("ESL %s:%s reply with no pending command", self.host, self.port)
        elif content_type == "auth/request":
            self._auth_request_event.set()
        elif content_type in ("text/disconnect-notice", "text/rude-rejection"):
            if message.headers.get("Content-Disposition") != "linger":
                self.connected = False
                self._auth_request_event.set()
        # log/data and anything newer: not subscribed, ignored

    # -- commands ---------------------------------------------------------------------
    def send(self, data: str, timeout: float | None = None) -> Message:  # type: ignore[override]
        return self.send_raw(encode_command(data), timeout)

    def send_raw(self, raw: bytes, timeout: float | None = None) -> Message:
        """Send framed command bytes and wait for the one reply FreeSWITCH owes us.

        Replies come back strictly in command order, so a timed-out command keeps its
        slot in the FIFO: the late reply is consumed by it, not by the next command.
        """
        if not self.connected:
            raise LinkDown(f"not connected to {self.host}:{self.port}")
        result: AsyncResult = AsyncResult()
        self._commands_sent.append(result)
        try:
            self.sock.sendall(raw)
        except OSError as exc:
            self.close(f"socket error: {exc}")
            raise LinkDown(str(exc)) from None
        try:
            return result.get(timeout=self.timeout if timeout is None else timeout)
        except gevent.Timeout:
            raise CommandTimeout(f"no reply from {self.host}:{self.port} within {timeout or self.timeout}s") from None

    def api(self, command: str, timeout: float | None = None) -> str:
        """``api <command>``; returns the body, raises ``CommandFailed`` on ``-ERR``/``-USAGE``."""
        body = self.send(f"api {command}", timeout).text
        if body.startswith("-"):
            raise CommandFailed(command, body)
        return body

    def bgapi(self, command: str, job_uuid: str, timeout: float | None = None) -> None:
        """``bgapi`` with our own Job-UUID, so the job can be tracked before the reply."""
        reply = self.send_raw(encode_command(f"bgapi {command}", {"Job-UUID": job_uuid}), timeout)
        if not reply.reply_text.startswith("+OK"):
            raise CommandFailed(command, reply.reply_text)

    def sendmsg(self, call_uuid: str, headers: dict[str, str], timeout: float | None = None) -> None:
        """``sendmsg <uuid>`` with ``headers`` (call-command, execute-app-name, …)."""
        reply = self.send_raw(encode_command(f"sendmsg {call_uuid}", headers), timeout)
        if not reply.reply_text.startswith("+OK"):
            raise CommandFailed(f"sendmsg {call_uuid}", reply.reply_text)

    def command(self, line: str, timeout: float | None = None) -> str:
        """A plain command (``event``, ``filter``, …); returns Reply-Text or raises."""
        text = self.send(line, timeout).reply_text
        if text.startswith("-ERR"):
            raise CommandFailed(line, text)
        return text

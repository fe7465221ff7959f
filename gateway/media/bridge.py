"""The media bridge: the WebSocket endpoint mod_audio_stream connects to, one per call.

FreeSWITCH side (research/freeswitch.md §4.3/§4.4, fs-captures audio_stream_*): the module
opens ``ws://<bridge>/stream/<call uuid>?token=…`` (the uuid may also come as ``?call=``),
must be upgraded within 1 s, may or may not offer permessage-deflate (its C code leaves
the flag uninitialised), may ping; it sends one TEXT frame of metadata, then BINARY raw
L16 little-endian frames every 20 ms (320 bytes at 8 kHz mono, 640 at 16 kHz).  Going
back, the call's ``downlink`` plays the bot's audio in the node's playback form
(``gateway.media.downlink``: binary frames into a bidirectional build's buffer, or
``streamAudio`` files that the controller queues with ``sendmsg`` playback).

The server is wsproto (sans-IO) over a gevent ``StreamServer``; the IO glue is kept thin.
Each ``CallStream`` runs greenlets for: the FreeSWITCH socket reader (in the server's
handler), the ESL events of its call, and the ESL commands it needs (sequential, so
queued playbacks keep their order).  Its playout runs on the bridge's one ``Clock``
(``gateway.media.clock``), shared by every call; sends to FreeSWITCH never block it
(``FsSocket``).  A bot's bad message is logged and skipped; an exception in one call's
greenlet never reaches another call.

One bot cannot stall the others: the readers let other greenlets run every
``YIELD_EVERY`` messages, a bot's message over ``twilio.MAX_MESSAGE_CHARS`` is refused
unparsed, and marks waiting for their audio are bounded.  What one call may hold, at
most: the bot's queued audio, 60 s (480 KB: ``playout``/``file_playout``); 1000 marks
(``MAX_MARKS_IN_FLIGHT``) of up to 256 characters; caller audio waiting for a slow bot,
2 s (16 KB: ``connectors.base``), and 1 s before the bot is up; 256 KiB not yet taken by
FreeSWITCH (``MAX_SEND_BACKLOG``): about 1.3 MB in all, plus the one bot message being
read (websocket-client reads a frame whole before it can be refused).  A call in steady
two-way talk takes about 80 KiB (bench/media_relay.py's RSS per stream).
"""

from __future__ import annotations

import logging
import secrets
import socket
import time
from collections import deque
from typing import Protocol
from urllib.parse import parse_qs, urlsplit

import gevent
from gevent.event import Event as Flag
from gevent.queue import Queue
from gevent.server import StreamServer
from wsproto import ConnectionType, WSConnection
from wsproto.events import (
    AcceptConnection, BytesMessage, CloseConnection, Ping, RejectConnection, Request, TextMessage,
)
from wsproto.extensions import PerMessageDeflate
from wsproto.utilities import LocalProtocolError, RemoteProtocolError

from gateway.media import codec
from gateway.media.clock import Clock
from gateway.media.connectors.base import BotLink
from gateway.media.downlink import CLEAR_AUDIO, FORMS, Control, FileDownlink, StreamDownlink
from gateway.media.twilio import (
    Clear, Closed, LogNote, Mark, Media, ProtocolIssue, ProviderSession, Transcript, TranscriptCorrection,
)

logger = logging.getLogger(__name__)

HANDSHAKE_TIMEOUT = 5.0
MAX_PREBOT_FRAMES = 50  # caller audio kept while the bot connects: 1 s
MAX_LOGGED_ISSUES = 10  # per call; the rest are counted
DOWNLINK_EVENTS = frozenset({"CUSTOM", "PLAYBACK_STOP", "CHANNEL_EXECUTE_COMPLETE"})
#: The ESL events of its call a ``CallStream`` takes (``on_esl_event``): the caller's keys too.
STREAM_EVENTS = DOWNLINK_EVENTS | {"DTMF"}
MAX_SEND_BACKLOG = 256 * 1024  # bytes FreeSWITCH has not taken: ~8 s of L16 beyond the lead
MAX_MARKS_IN_FLIGHT = 1000  # per call: a mark per 20 ms chunk for 20 s of queued audio
YIELD_EVERY = 16  # messages a reader handles before it lets the other greenlets run
YIELD_SECONDS = 0.0001  # a timer, so the loop polls the other sockets first (sleep(0) would not)


class StreamOwner(Protocol):
    """What a ``CallStream`` reports to (``gateway.calls.media_session.MediaSessions``)."""

    def bot_closed(self, stream: "CallStream", link: BotLink, event: Closed) -> None: ...
    def provider_session(self, stream: "CallStream", event: ProviderSession) -> None: ...
    def fs_failed(self, stream: "CallStream", reason: str) -> None: ...
    def transcript(self, stream: "CallStream", role: str, text: str) -> None: ...
    def transcript_correction(self, stream: "CallStream", original: str, corrected: str) -> None: ...
    def log(self, stream: "CallStream", detail: dict) -> None: ...


class FsSocket:
    """The server end of mod_audio_stream's WebSocket.

    Sends never block: what the kernel does not take at once waits in a backlog that a
    greenlet of this socket writes out, in order (the bridge's one clock sends for every
    call, so one call's full socket must not hold up the others).  A backlog over
    ``MAX_SEND_BACKLOG`` means FreeSWITCH stopped reading: the socket is given up."""

    def __init__(self, sock, ws: WSConnection) -> None:
        self.sock = sock
        self.ws = ws
        self.open = True
        self.sent_messages = 0
        self._backlog: bytearray | None = None  # not None while a flush is under way

    def send(self, event) -> bool:
        if not self.open:
            return False
        try:
            data = self.ws.send(event)
        except LocalProtocolError:
            self.open = False
            return False
        if self._backlog is not None:
            self._backlog += data
            if len(self._backlog) > MAX_SEND_BACKLOG:
                logger.warning("media bridge: FreeSWITCH stopped reading (%d bytes not taken); closing its socket",
                               len(self._backlog))
                self._give_up()
                return False
            return True
        try:
            sent = self.sock.send(data, 0, 0.0)  # timeout 0: never wait here
        except BlockingIOError:
            sent = 0
        except OSError:
            self.open = False
            return False
        if sent < len(data):
            self._backlog = bytearray(data[sent:])
            gevent.spawn(self._flush)
        return True

    def _flush(self) -> None:
        while self._backlog:
            data = bytes(self._backlog)
            self._backlog.clear()
            try:
                self.sock.sendall(data)
            except OSError:
                self.open = False
                return
        self._backlog = None

    def _give_up(self) -> None:
        self.open = False
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def send_text(self, text: str) -> bool:
        ok = self.send(TextMessage(data=text))
        self.sent_messages += ok
        return ok

    def send_bytes(self, data: bytes) -> bool:
        ok = self.send(BytesMessage(data=data))
        self.sent_messages += ok
        return ok

    def close(self, code: int = 1000, reason: str = "") -> None:
        if self.open:
            self.send(CloseConnection(code=code, reason=reason))
        self.open = False
        try:
            self.sock.close()
        except OSError:
            pass


class CallStream:
    """The media of one call: FreeSWITCH's socket, the bot link and the downlink."""

    def __init__(self, bridge: "MediaBridge", call_uuid: str, *, form: str = "stream", rate: int = 8000,
                 control: Control | None = None, owner: StreamOwner | None = None) -> None:
        if form not in FORMS:
            raise ValueError(f"playback form {form!r}: expected one of {FORMS}")
        self.bridge = bridge
        self.call_uuid = call_uuid
        self.form = form
        self.rate = rate
        self.control = control
        self.owner = owner
        self.token = secrets.token_urlsafe(12)
        self.fs: FsSocket | None = None
        self.fs_connected = Flag()
        self.fs_metadata: str | None = None
        self.bot: BotLink | None = None
        self.closed = False
        self._commands: Queue = Queue()
        if form == "stream":
            self.downlink = StreamDownlink(lambda: self.fs)
        else:
            self.downlink = FileDownlink(lambda: self.fs, self._commands.put)
        self.counters = {"caller_frames": 0, "bot_media": 0, "bot_marks": 0, "clears": 0, "issues": 0,
                         "marks_refused": 0}
        self._overflow_logged = False
        self._resample = codec.Resampler(rate, 8000) if rate != 8000 else None
        self._caller_buf = bytearray()
        self._prebot: deque[tuple[str, object]] = deque(maxlen=MAX_PREBOT_FRAMES)  # before the bot is up
        self.esl_events: Queue = Queue()
        self._greenlets = [gevent.spawn(self._event_loop), gevent.spawn(self._command_loop)]
        # timing marks, for logs and the latency bench
        self.last_frame_to_bot: float | None = None
        self.first_frame_to_bot: dict[int, float] = {}

    @property
    def url_path(self) -> str:
        return f"/stream/{self.call_uuid}?token={self.token}"

    # -- FreeSWITCH side ----------------------------------------------------------------
    def attach_fs(self, fs: FsSocket) -> None:
        self.fs = fs
        self.fs_connected.set()
        self._wake()

    def on_fs_text(self, text: str) -> None:
        if self.fs_metadata is None:
            self.fs_metadata = text
        else:
            self._log({"event": "fs_text", "text": text[:200]})

    def on_caller_audio(self, pcm: bytes) -> None:
        if self._resample is not None:
            pcm = self._resample.process(pcm)
        self._caller_buf += codec.l16_to_ulaw(pcm)
        while len(self._caller_buf) >= codec.ULAW_FRAME_BYTES:
            frame = bytes(self._caller_buf[:codec.ULAW_FRAME_BYTES])
            del self._caller_buf[:codec.ULAW_FRAME_BYTES]
            self.counters["caller_frames"] += 1
            bot = self.bot
            if bot is None:
                self._prebot.append(("audio", frame))
                continue
            now = time.monotonic()
            self.first_frame_to_bot.setdefault(id(bot), now)
            self.last_frame_to_bot = now
            bot.send_audio(frame)

    def on_fs_closed(self, code: int, reason: str) -> None:
        self.fs_connected.clear()
        if not self.closed and self.owner is not None:
            self.owner.fs_failed(self, f"mod_audio_stream socket closed ({code} {reason})".strip())

    # -- bot side -------------------------------------------------------------------------
    def set_bot(self, link: BotLink) -> BotLink | None:
        """Attach a connected bot; a previous one (redirect) gets ``stop`` and is closed,
        and the audio it had queued is dropped.  Returns the previous link."""
        old = self.bot
        self.bot = link
        if old is not None:
            self.downlink.clear(time.monotonic())  # the old bot's marks die with it
            old.close(stop=True)
            self._wake()
        else:
            now = time.monotonic()
            while self._prebot:  # what the caller said (and pressed) while the bot was connecting
                kind, value = self._prebot.popleft()
                if kind == "audio":
                    self.first_frame_to_bot.setdefault(id(link), now)
                    link.send_audio(value)
                else:
                    link.send_dtmf(value)
        link.start(lambda event, link=link: self._on_bot_event(link, event))
        return old

    def _on_bot_event(self, link: BotLink, event) -> None:
        if link is not self.bot or self.closed:
            return  # a replaced bot's late messages
        now = time.monotonic()
        if isinstance(event, Media):
            self.counters["bot_media"] += 1
            taken = self.downlink.media(event.payload, now)
            if taken < len(event.payload) and not self._overflow_logged:
                self._overflow_logged = True
                logger.warning("call %s < bot %s: more audio queued than the call may hold; the excess is dropped",
                               self.call_uuid, link.label)
                self._log({"event": "bot_audio_overflow", "dropped_bytes": len(event.payload) - taken})
            self._wake()
        elif isinstance(event, Mark):
            if self.downlink.pending_marks >= MAX_MARKS_IN_FLIGHT:
                self._refuse_mark(link, event.name)
                return
            self.counters["bot_marks"] += 1
            self._echo(self.downlink.mark(event.name))
            self._wake()
        elif isinstance(event, Clear):
            self.counters["clears"] += 1
            self._echo(self.downlink.clear(now))
            self._wake()
        elif isinstance(event, Transcript):
            if self.owner is not None:
                self.owner.transcript(self, event.role, event.text)
        elif isinstance(event, TranscriptCorrection):
            if self.owner is not None:
                self.owner.transcript_correction(self, event.original, event.corrected)
        elif isinstance(event, LogNote):
            self._log(event.detail)
        elif isinstance(event, ProviderSession):
            if self.owner is not None:
                self.owner.provider_session(self, event)
        elif isinstance(event, ProtocolIssue):
            self.counters["issues"] += 1
            if self.counters["issues"] <= MAX_LOGGED_ISSUES:
                logger.warning("call %s < bot %s: skipped message: %s %s", self.call_uuid, link.label,
                               event.reason, event.text)
                self._log({"event": "bot_message_skipped", "reason": event.reason, "text": event.text[:120]})
        elif isinstance(event, Closed):
            if self.owner is not None:
                self.owner.bot_closed(self, link, event)

    def _refuse_mark(self, link: BotLink, name: str) -> None:
        """Over ``MAX_MARKS_IN_FLIGHT``: the mark is skipped (never echoed), logged once."""
        self.counters["marks_refused"] += 1
        if self.counters["marks_refused"] == 1:
            logger.warning("call %s < bot %s: more than %d marks waiting for their audio; further marks are "
                           "skipped and not echoed", self.call_uuid, link.label, MAX_MARKS_IN_FLIGHT)
            self._log({"event": "bot_marks_over_limit", "limit": MAX_MARKS_IN_FLIGHT, "mark": name[:120]})

    def _echo(self, marks: list[str]) -> None:
        if marks and self.bot is not None:
            for name in marks:
                self.bot.mark_played(name)

    # -- the playout, on the bridge's clock ----------------------------------------------
    def _wake(self) -> None:
        if not self.closed:
            self.bridge.clock.soon(self)

    def run(self, now: float) -> float | None:
        """The clock's turn: hand over what is due; returns when to run again."""
        if self.closed or not self.fs_connected.is_set():
            return None  # nothing to hand over yet; bot audio waits in the queue
        try:
            self._echo(self.downlink.tick(now))
        except Exception:
            logger.exception("call %s: playout failed", self.call_uuid)
        return self.downlink.next_wakeup()

    # -- ESL events of this call (routed here by the controller's event hook) -------------
    def on_esl_event(self, event) -> None:
        """Non-blocking: called from the controller's event path."""
        self.esl_events.put(event)

    def _event_loop(self) -> None:
        while not self.closed:
            event = self.esl_events.get()
            try:
                self._esl_event(event)
            except Exception:
                logger.exception("call %s: handling %r failed", self.call_uuid, event)

    def _esl_event(self, event) -> None:
        name = event.name
        if name == "DTMF":
            digit = event.get("DTMF-Digit")
            if digit:
                if self.bot is not None:
                    self.bot.send_dtmf(digit)
                else:
                    self._prebot.append(("dtmf", digit))
            return
        if name == "CUSTOM":
            subclass = event.subclass or ""
            if subclass == "mod_audio_stream::error":
                if self.owner is not None:
                    self.owner.fs_failed(self, f"mod_audio_stream error: {(event.body or '')[:200]}")
            elif subclass == "mod_audio_stream::disconnect":
                self._log({"event": "fs_disconnect", "body": (event.body or "")[:200]})
            elif subclass == "mod_audio_stream::json" and event.body != CLEAR_AUDIO:
                self._log({"event": "fs_json", "body": (event.body or "")[:200]})
        if name in DOWNLINK_EVENTS:
            self._echo(self.downlink.esl_event(event))
            self._wake()

    def _command_loop(self) -> None:
        while not self.closed:
            command = self._commands.get()
            if self.control is None:
                continue
            try:
                if command[0] == "play":
                    self.control.play(self.call_uuid, command[1])
                elif command[0] == "break":
                    self.control.break_playback(self.call_uuid)
            except Exception as exc:  # the call may be gone: not this stream's problem
                logger.info("call %s: %s failed: %s", self.call_uuid, command[0], exc)

    # -- end ------------------------------------------------------------------------------
    def idle(self) -> bool:
        """Everything the bot sent has been played (or there was nothing)."""
        return self.downlink.idle(time.monotonic())

    def close(self, *, stop_bot: bool = True) -> None:
        if self.closed:
            return
        self.closed = True
        self.bridge.streams.pop(self.call_uuid, None)
        self.bridge.clock.forget(self)
        if self.bot is not None:
            self.bot.close(stop=stop_bot)
        if self.fs is not None:
            self.fs.close(1000)
        current = gevent.getcurrent()
        for greenlet in self._greenlets:
            if greenlet is not current:
                greenlet.kill(block=False)

    def stats(self) -> dict:
        return {"playback": self.form, **self.counters, **self.downlink.stats()}

    def _log(self, detail: dict) -> None:
        if self.owner is not None:
            self.owner.log(self, detail)


class MediaBridge:
    """The WebSocket server FreeSWITCH's mod_audio_stream connects to."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0, public_url: str | None = None) -> None:
        self.host = host
        self.requested_port = port
        self.port: int | None = None
        self.public_url = public_url
        self.streams: dict[str, CallStream] = {}
        self.clock = Clock()  # every stream's playout
        self._server: StreamServer | None = None

    def start(self) -> int:
        self._server = StreamServer((self.host, self.requested_port), self._handle)
        self._server.start()
        self.port = self._server.server_port
        logger.info("media bridge on ws://%s:%s", self.host, self.port)
        return self.port

    def stop(self) -> None:
        for stream in list(self.streams.values()):
            stream.close()
        self.clock.stop()
        if self._server is not None:
            self._server.stop(timeout=1)
            self._server = None

    @property
    def base_url(self) -> str:
        if self.public_url:
            return self.public_url.rstrip("/")
        host = "127.0.0.1" if self.host in ("0.0.0.0", "", "::") else self.host
        return f"ws://{host}:{self.port}"

    def open(self, call_uuid: str, **kwargs) -> CallStream:
        old = self.streams.get(call_uuid)
        if old is not None:
            old.close()
        stream = self.streams[call_uuid] = CallStream(self, call_uuid, **kwargs)
        return stream

    def url_for(self, stream: CallStream) -> str:
        return self.base_url + stream.url_path

    def route_event(self, call_uuid: str, event) -> bool:
        stream = self.streams.get(call_uuid)
        if stream is None:
            return False
        stream.on_esl_event(event)
        return True

    # -- one mod_audio_stream connection ------------------------------------------------
    def _handle(self, sock, address) -> None:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # 20 ms frames must not wait for ACKs
        ws = WSConnection(ConnectionType.SERVER)
        stream: CallStream | None = None
        fs: FsSocket | None = None
        close_code, close_reason = 1006, "connection lost"
        try:
            request = self._handshake(sock, ws)
            if request is None:
                return
            stream = self._stream_for(request.target)
            if stream is None or stream.fs is not None:
                status = 404 if stream is None else 409
                sock.sendall(ws.send(RejectConnection(status_code=status, has_body=False)))
                logger.warning("media bridge: refused %s from %s (%d)", _safe_target(request.target), address, status)
                stream = None
                return
            sock.sendall(ws.send(AcceptConnection(extensions=[PerMessageDeflate()])))
            sock.settimeout(None)
            fs = FsSocket(sock, ws)
            stream.attach_fs(fs)
            text_parts: list[str] = []
            byte_parts: list[bytes] = []
            handled = 0
            while True:
                try:
                    data = sock.recv(65536)
                except OSError:
                    data = b""
                ws.receive_data(data or None)
                for event in ws.events():
                    handled += 1
                    if handled % YIELD_EVERY == 0:
                        gevent.sleep(YIELD_SECONDS)  # a backlog of frames must not hold up the other calls
                    if isinstance(event, BytesMessage):
                        byte_parts.append(bytes(event.data))
                        if event.message_finished:
                            stream.on_caller_audio(b"".join(byte_parts))
                            byte_parts.clear()
                    elif isinstance(event, TextMessage):
                        text_parts.append(event.data)
                        if event.message_finished:
                            stream.on_fs_text("".join(text_parts))
                            text_parts.clear()
                    elif isinstance(event, Ping):
                        fs.send(event.response())
                    elif isinstance(event, CloseConnection):
                        close_code, close_reason = event.code, event.reason or ""
                        fs.send(event.response())
                        return
                if not data:
                    return
        except RemoteProtocolError as exc:
            logger.warning("media bridge: bad WebSocket from %s: %s", address, exc)
            close_code, close_reason = 1002, str(exc)
        except Exception:
            logger.exception("media bridge: connection from %s failed", address)
        finally:
            if fs is not None:
                fs.open = False
            try:
                sock.close()
            except OSError:
                pass
            if stream is not None and stream.fs is fs and fs is not None:
                stream.on_fs_closed(close_code, close_reason)

    @staticmethod
    def _handshake(sock, ws: WSConnection) -> Request | None:
        sock.settimeout(HANDSHAKE_TIMEOUT)
        while True:
            try:
                data = sock.recv(65536)
            except OSError:
                return None
            ws.receive_data(data or None)
            for event in ws.events():
                if isinstance(event, Request):
                    return event
            if not data:
                return None

    def _stream_for(self, target: str) -> CallStream | None:
        parts = urlsplit(target)
        query = parse_qs(parts.query)
        segments = [s for s in parts.path.split("/") if s]
        call_uuid = None
        if len(segments) >= 2 and segments[-2] == "stream":
            call_uuid = segments[-1]
        for key in ("call", "uuid", "call_uuid"):
            if call_uuid is None and query.get(key):
                call_uuid = query[key][0]
        stream = self.streams.get(call_uuid or "")
        if stream is None:
            return None
        token = (query.get("token") or [""])[0]
        if not secrets.compare_digest(token, stream.token):
            return None
        return stream


def _safe_target(target: str) -> str:
    return target.split("?", 1)[0]

"""The media bridge: the WebSocket endpoint mod_audio_stream connects to, one per call.

FreeSWITCH side (research/freeswitch.md §4.3/§4.4, fs-captures audio_stream_*): the module
opens ``ws://<bridge>/stream/<call uuid>?token=…`` (the uuid may also come as ``?call=``),
must be upgraded within 1 s, may or may not offer permessage-deflate (its C code leaves
the flag uninitialised), may ping; it sends one TEXT frame of metadata, then BINARY raw
L16 little-endian frames every 20 ms (320 bytes at 8 kHz mono, 640 at 16 kHz).  Going
back, the bridge sends ``streamAudio`` TEXT frames, played in one of two forms:

* ``stream``: a bidirectional build injects the raw audio in real time; the bridge hands
  over one 20 ms frame at the moment it is due, so ``clear`` silences within one frame;
* ``files``: the community module writes each ``streamAudio`` to a file and fires
  ``mod_audio_stream::play``; the bridge then plays it with ``uuid_broadcast`` and clears
  with ``uuid_break``.  Chunks (200 ms by default) go out ``lead`` seconds ahead of their
  play time so the files play back to back; the clock is re-anchored on each chunk's
  PLAYBACK_START, so marks are echoed when FreeSWITCH has really played their audio.

The server is wsproto (sans-IO) over a gevent ``StreamServer``; the IO glue is kept thin.
Each ``CallStream`` runs greenlets for: the FreeSWITCH socket reader (in the server's
handler), the playout clock, the ESL events of its call, and the ESL commands it needs
(sequential, so broadcasts keep their order).  A bot's bad message is logged and
skipped; an exception in one call's greenlet never reaches another call.
"""

from __future__ import annotations

import base64
import io
import json
import logging
import secrets
import socket
import time
import wave
from collections import deque
from dataclasses import dataclass
from typing import Protocol
from urllib.parse import parse_qs, urlsplit

import gevent
from gevent.event import Event as Flag
from gevent.lock import Semaphore
from gevent.queue import Queue
from gevent.server import StreamServer
from wsproto import ConnectionType, WSConnection
from wsproto.events import (
    AcceptConnection, BytesMessage, CloseConnection, Ping, RejectConnection, Request, TextMessage,
)
from wsproto.extensions import PerMessageDeflate
from wsproto.utilities import LocalProtocolError, RemoteProtocolError

from gateway.media import codec
from gateway.media.connectors.base import BotLink
from gateway.media.playout import Playout
from gateway.media.twilio import Clear, Closed, Mark, Media, ProtocolIssue, ProviderSession, Transcript

logger = logging.getLogger(__name__)

FORMS = ("files", "stream")
HANDSHAKE_TIMEOUT = 5.0
MAX_PREBOT_FRAMES = 50  # caller audio kept while the bot connects: 1 s
MAX_LOGGED_ISSUES = 10  # per call; the rest are counted


class StreamOwner(Protocol):
    """What a ``CallStream`` reports to (``gateway.calls.media_session.MediaSessions``)."""

    def bot_closed(self, stream: "CallStream", link: BotLink, event: Closed) -> None: ...
    def provider_session(self, stream: "CallStream", event: ProviderSession) -> None: ...
    def fs_failed(self, stream: "CallStream", reason: str) -> None: ...
    def transcript(self, stream: "CallStream", role: str, text: str) -> None: ...
    def log(self, stream: "CallStream", detail: dict) -> None: ...


class Control(Protocol):
    """The ESL commands the files form needs (the call controller has them)."""

    def broadcast(self, call_uuid: str, path: str) -> None: ...
    def break_playback(self, call_uuid: str) -> None: ...


@dataclass(slots=True)
class Chunk:
    """A chunk handed to FreeSWITCH in the files form."""

    generation: int  # bumps on every clear: older chunks must not be played
    start: float  # when the clock wants it to start playing
    seconds: float


def _fired_at(event) -> float:
    """When FreeSWITCH fired ``event``, on our monotonic clock: its Event-Date-Timestamp
    (microseconds, wall clock) when plausible, so the ESL transport's own delay (Nagle,
    a busy reader) does not count as playback time; else its arrival."""
    now = time.monotonic()
    stamp = event.get("Event-Date-Timestamp") or ""
    if stamp.isdigit():
        age = time.time() - int(stamp) / 1e6
        if 0.0 <= age < 1.0:
            return now - age
    return now


def wav_bytes(pcm: bytes, rate: int = 8000) -> bytes:
    out = io.BytesIO()
    with wave.open(out, "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(rate)
        wav.writeframes(pcm)
    return out.getvalue()


def stream_audio_message(pcm: bytes, rate: int = 8000, data_type: str = "raw") -> str:
    """mod_audio_stream's ``streamAudio`` message (§4.4)."""
    return json.dumps({"type": "streamAudio", "data": {
        "audioDataType": data_type, "sampleRate": rate, "audioData": base64.b64encode(pcm).decode("ascii")}},
        separators=(",", ":"))


class FsSocket:
    """The server end of mod_audio_stream's WebSocket."""

    def __init__(self, sock, ws: WSConnection) -> None:
        self.sock = sock
        self.ws = ws
        self.lock = Semaphore()
        self.open = True
        self.sent_messages = 0

    def send(self, event) -> bool:
        with self.lock:
            if not self.open:
                return False
            try:
                data = self.ws.send(event)
                self.sock.sendall(data)
                return True
            except (OSError, LocalProtocolError):
                self.open = False
                return False

    def send_text(self, text: str) -> bool:
        ok = self.send(TextMessage(data=text))
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
    """The media of one call: FreeSWITCH's socket, the bot link and the playout."""

    def __init__(self, bridge: "MediaBridge", call_uuid: str, *, form: str = "files", rate: int = 8000,
                 control: Control | None = None, owner: StreamOwner | None = None,
                 files_chunk: float = 0.2, files_lead: float = 0.1) -> None:
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
        if form == "stream":
            self.playout = Playout(lead=0.0, chunk=codec.ULAW_FRAME_BYTES, realign=True)
        else:
            self.playout = Playout(lead=files_lead, chunk=int(files_chunk * 8000))
        self.counters = {"caller_frames": 0, "bot_media": 0, "bot_marks": 0, "clears": 0, "issues": 0,
                         "handed_messages": 0, "broadcasts": 0}
        self._resample = codec.Resampler(rate, 8000) if rate != 8000 else None
        self._caller_buf = bytearray()
        self._prebot: deque[tuple[str, object]] = deque(maxlen=MAX_PREBOT_FRAMES)  # before the bot is up
        self._wake = Flag()
        self._generation = 0
        self._chunks: deque[Chunk] = deque()  # sent, waiting for their ::play event
        self._files: dict[str, Chunk] = {}  # file -> chunk, until PLAYBACK_STOP
        self.esl_events: Queue = Queue()
        self._commands: Queue = Queue()
        self._greenlets = [gevent.spawn(self._playout_loop), gevent.spawn(self._event_loop),
                           gevent.spawn(self._command_loop)]
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
        self._wake.set()

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
            self.playout.clear(time.monotonic(), cut=self.form == "files")
            if self.form == "files":
                self._generation += 1
                self._commands.put(("break",))
            old.close(stop=True)
            self._wake.set()
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
            self.playout.enqueue(event.payload, now)
            self._wake.set()
        elif isinstance(event, Mark):
            self.counters["bot_marks"] += 1
            self.playout.mark(event.name)
            self._wake.set()
        elif isinstance(event, Clear):
            self.counters["clears"] += 1
            for name in self.playout.clear(now, cut=self.form == "files"):
                link.mark_played(name)
            if self.form == "files":
                self._generation += 1
                self._chunks.clear()
                self._commands.put(("break",))
            self._wake.set()
        elif isinstance(event, Transcript):
            if self.owner is not None:
                self.owner.transcript(self, event.role, event.text)
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

    # -- the playout clock --------------------------------------------------------------
    def _playout_loop(self) -> None:
        while not self.closed:
            if not self.fs_connected.is_set():
                self._wake.clear()
                self._wake.wait()  # nothing to hand over yet; bot audio waits in the queue
                continue
            try:
                self._tick()
            except Exception:
                logger.exception("call %s: playout failed", self.call_uuid)
            wakeup = self.playout.next_wakeup()
            self._wake.clear()
            if wakeup is None:
                self._wake.wait()
            else:
                delay = wakeup - time.monotonic()
                if delay > 0:
                    self._wake.wait(delay)

    def _tick(self) -> None:
        now = time.monotonic()
        due = self.playout.poll(now)
        if due.audio and self.fs is not None:
            pcm = codec.ulaw_to_l16(due.audio)
            if self.form == "stream":
                self.fs.send_text(stream_audio_message(pcm))
            else:
                self._chunks.append(Chunk(self._generation, due.start, len(due.audio) / 8000))
                self.fs.send_text(stream_audio_message(wav_bytes(pcm), data_type="wav"))
            self.counters["handed_messages"] += 1
        if due.marks and self.bot is not None:
            for name in due.marks:
                self.bot.mark_played(name)

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
        elif name == "CUSTOM":
            subclass = event.subclass or ""
            if subclass == "mod_audio_stream::play":
                self._play_event(event.body or "")
            elif subclass == "mod_audio_stream::error":
                if self.owner is not None:
                    self.owner.fs_failed(self, f"mod_audio_stream error: {(event.body or '')[:200]}")
            elif subclass == "mod_audio_stream::disconnect":
                self._log({"event": "fs_disconnect", "body": (event.body or "")[:200]})
            elif subclass == "mod_audio_stream::json":
                self._log({"event": "fs_json", "body": (event.body or "")[:200]})
        elif name == "PLAYBACK_START":
            chunk = self._files.get(event.get("Playback-File-Path") or "")
            if chunk is not None and chunk.generation == self._generation:
                started = _fired_at(event)
                self.playout.shift(started - chunk.start, after=chunk.start)
                self._wake.set()
        elif name == "PLAYBACK_STOP":
            self._files.pop(event.get("Playback-File-Path") or "", None)

    def _play_event(self, body: str) -> None:
        try:
            path = json.loads(body)["file"]
        except (ValueError, KeyError, TypeError):
            self._log({"event": "fs_play_unreadable", "body": body[:200]})
            return
        chunk = self._chunks.popleft() if self._chunks else None
        if chunk is None or chunk.generation != self._generation:
            return  # cleared before FreeSWITCH reported it
        self._files[path] = chunk
        self._commands.put(("broadcast", path))

    def _command_loop(self) -> None:
        while not self.closed:
            command = self._commands.get()
            if self.control is None:
                continue
            try:
                if command[0] == "broadcast":
                    self.counters["broadcasts"] += 1
                    self.control.broadcast(self.call_uuid, command[1])
                elif command[0] == "break":
                    self.control.break_playback(self.call_uuid)
            except Exception as exc:  # the call may be gone: not this stream's problem
                logger.info("call %s: %s failed: %s", self.call_uuid, command[0], exc)

    # -- end ------------------------------------------------------------------------------
    def close(self, *, stop_bot: bool = True) -> None:
        if self.closed:
            return
        self.closed = True
        self.bridge.streams.pop(self.call_uuid, None)
        if self.bot is not None:
            self.bot.close(stop=stop_bot)
        if self.fs is not None:
            self.fs.close(1000)
        current = gevent.getcurrent()
        for greenlet in self._greenlets:
            if greenlet is not current:
                greenlet.kill(block=False)

    def stats(self) -> dict:
        return {**self.counters, "queued_bytes": self.playout.queued_bytes,
                "dropped_bytes": self.playout.dropped_bytes}

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
            while True:
                try:
                    data = sock.recv(65536)
                except OSError:
                    data = b""
                ws.receive_data(data or None)
                for event in ws.events():
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

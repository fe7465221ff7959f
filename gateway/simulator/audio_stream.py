"""mod_audio_stream in the simulator: ``uuid_audio_stream`` opens a real WebSocket.

Two builds (``module(sim).build``), with one interface (research/downlink.md §2):
``bidirectional``, cloudfieldcz/mod_audio_stream_fork fa2e5d2d9f86b375947a73709a2520ba6307f629
(the default for new installs), and ``community``, amigniter/mod_audio_stream ec2a781.
What both do (research/freeswitch.md §4 and the fs-captures ``audio_stream_*``):

* API replies: ``+OK Success``, ``-ERR Operation Failed`` (unknown uuid, bad URL or mix
  or rate, a second ``start``, any command on a channel without a stream, unknown
  subcommand), ``-USAGE: …`` (fewer than 2 arguments, or ``start`` with fewer than 4),
  ``-ERR no reply`` (``send_text`` without text: the module writes nothing).  Arguments
  are split like ``switch_separate_string`` (6 at most, the metadata is the rest of the
  line); ``send_text`` and ``stop`` send only their first word (capture);
* ``start`` pre-answers the channel, fires MEDIA_BUG_START and connects in the
  background: the upgrade must finish within 1 s, else ``mod_audio_stream::error``
  (code 10); a refused connection gives code 6 "Connection refused (system error 111)";
* once open: one TEXT frame with the metadata (if any), CUSTOM
  ``mod_audio_stream::connect`` ``{"status":"connected"}``, then BINARY L16 frames in
  real time: 320 bytes per 20 ms at 8 kHz mono, 640 at 16 kHz, times the channels
  (stereo) and ``STREAM_BUFFER_SIZE``/20.  The caller audio is the channel's
  ``caller_audio`` (``Simulator.set_caller_audio``), looped, else silence;
* a server close fires ``mod_audio_stream::disconnect`` with its code and reason (the
  bug stays attached, sending stops); ``stop`` or hangup closes with 1000 and fires
  nothing; ``stop`` deletes the stream's files; ``pause`` stops sending until ``resume``;
* what the server sends back: a ``streamAudio`` TEXT message is written to
  ``<tmp>/<uuid>_<n>.tmp.<ext>`` and CUSTOM ``mod_audio_stream::play`` is fired with the
  message's ``data`` minus ``audioData`` plus ``file`` (nothing plays it: that is the
  controller's job); any other TEXT (or a ``streamAudio`` the module cannot use) is fired
  as ``mod_audio_stream::json`` with the text as its body.

What only the bidirectional build does (downlink.md §2): BINARY frames are L16 LE mono at
the stream's rate, any size, appended to a playout buffer of at most
``PLAYOUT_BUFFER_BYTES`` (what arrives past it is dropped, ``AudioStream.dropped_bytes``:
not documented there) and played into the call from the next 20 ms frame, but only on
frames the channel writes (``playout.py``: parked with ``send_silence_when_idle``, or
during a playback); ``channel.heard`` records what the caller hears.  TEXT
``{"type":"clearAudio"}`` empties the buffer at the next frame, and is fired as
``mod_audio_stream::json`` too.  ``stop`` drops the buffer the same way (assumed: the
buffer goes with the media bug).  The community build ignores BINARY frames.

Not modelled: permessage-deflate (websocket-client has none; ``STREAM_MESSAGE_DEFLATE`` is
ignored), TLS options, ``mixed`` audio (sent as ``mono``), MEDIA_BUG_STOP at hangup,
BINARY audio at rates other than 8 and 16 kHz (counted as dropped).
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import os
import re
import socket
import struct
import tempfile
import time

import gevent
import websocket

from gateway.media import codec

from .originate import split_args

logger = logging.getLogger(__name__)

USAGE = ("-USAGE: <uuid> [start | stop | send_text | pause | resume | graceful-shutdown ] "
         "[wss-url | path] [mono | mixed | stereo] [8000 | 16000] [metadata]\n")
OK = "+OK Success\n"
FAILED = "-ERR Operation Failed\n"
NO_REPLY = "-ERR no reply\n"
CALLING = ("mod_audio_stream.c", "responseHandler", 16)
BUG = [("Media-Bug-Function", "audio_stream"), ("Media-Bug-Target", "N/A")]
_URI = re.compile(r"wss?://[A-Za-z0-9.-]+(:\d+)?([/?].*)?\Z")
RAW_EXT = {8000: "r8", 16000: "r16", 24000: "r24", 32000: "r32", 48000: "r48", 64000: "r64"}
FILE_TYPES = ("wav", "mp3", "ogg", "pcmu", "pcma")
BUILDS = ("bidirectional", "community")
#: The bidirectional fork's playout buffer, in bytes at the stream's rate (40 s at 8 kHz).
PLAYOUT_BUFFER_BYTES = 640_000


class AudioStreamModule:
    """mod_audio_stream for one simulator (see ``module(sim)``)."""

    def __init__(self, sim) -> None:
        self.sim = sim
        self.build = "bidirectional"  # or "community" (BUILDS)
        self.connect_timeout = 1.0
        self.temp_dir = tempfile.gettempdir()
        self.streams: dict[str, AudioStream] = {}
        self._core = None

    def api(self, args: str) -> str:
        argv = split_args(args, 6)
        if len(argv) < 2 or (argv[1].lower() == "start" and len(argv) < 4):
            return USAGE
        self._watch_core()
        ch = self.sim.channels.get(argv[0])
        if ch is None or ch.session is None or ch.hungup:
            return FAILED
        command = argv[1].lower()
        stream = self.streams.get(ch.uuid)
        if command == "start":
            if stream is not None:
                return FAILED  # "bug already attached"
            return OK if self._start(ch, argv) else FAILED
        if command == "send_text":
            if len(argv) < 3:
                return NO_REPLY
            text = argv[2].split(" ")[0]
            return OK if stream is not None and stream.send_text(text) else FAILED
        if stream is None:
            return FAILED
        if command == "stop":
            stream.stop(argv[2].split(" ")[0] if len(argv) > 2 else None)
            return OK
        if command == "pause":
            stream.paused = True
            return OK
        if command == "resume":
            stream.paused = False
            return OK
        return FAILED  # graceful-shutdown is in the syntax but not implemented

    def _start(self, ch, argv: list[str]) -> bool:
        url, mix = argv[2], argv[3].lower()
        if mix not in ("mono", "mixed", "stereo"):
            return False
        rate = 8000
        if len(argv) > 4:
            rate = {"16k": 16000, "8k": 8000}.get(argv[4])
            if rate is None:
                rate = int(argv[4]) if argv[4].isdigit() else 0
        if rate <= 0 or rate % 8000 or not _URI.match(url):
            return False
        metadata = argv[5] if len(argv) > 5 else None
        ch.session.pre_answer()
        stream = AudioStream(self, ch, url, mix, rate, metadata)
        self.streams[ch.uuid] = stream
        ch.fire("MEDIA_BUG_START", pre=BUG)
        stream.start()
        return True

    def _watch_core(self) -> None:
        """Hangup stops the stream: watch the (current) core's events."""
        core = self.sim.core
        if self._core is not core:
            self._core = core
            core.observers.append(self._on_event)

    def _on_event(self, name: str, uuid: str | None) -> None:
        if name == "CHANNEL_HANGUP" and uuid in self.streams:
            stream = self.streams.pop(uuid)
            gevent.spawn(stream.close_local, None)

    def forget(self, stream: "AudioStream") -> None:
        if self.streams.get(stream.ch.uuid) is stream:
            del self.streams[stream.ch.uuid]


def module(sim) -> AudioStreamModule:
    """The simulator's mod_audio_stream (created on first use)."""
    mod = getattr(sim, "audio_stream", None)
    if mod is None:
        mod = sim.audio_stream = AudioStreamModule(sim)
    return mod


def api(sim, args: str) -> str:
    """``uuid_audio_stream`` (the simulator's API table delegates here)."""
    return module(sim).api(args)


class AudioStream:
    """One media bug: the WebSocket to the server and its greenlets."""

    def __init__(self, mod: AudioStreamModule, ch, url: str, mix: str, rate: int, metadata: str | None) -> None:
        self.mod = mod
        self.sim = mod.sim
        self.ch = ch
        self.url = url
        self.mix = mix
        self.rate = rate
        self.channels = 2 if mix == "stereo" else 1
        self.metadata = metadata
        self.ws: websocket.WebSocket | None = None
        self.state = "connecting"  # connected | disconnected (server closed) | closed
        self.paused = False
        self.files: list[str] = []
        self.sent_frames = 0
        #: BINARY bytes received from the server, and (bidirectional) those past the buffer's size
        self.received_bytes = 0
        self.dropped_bytes = 0
        self._resampler = codec.Resampler(16000, 8000) if rate == 16000 else None
        self._odd = b""  # a frame's odd last byte, the first half of the next sample
        self._greenlets: list[gevent.Greenlet] = []
        buffer_ms = _int(ch.get_var("STREAM_BUFFER_SIZE"), 20)
        self.frames_per_message = max(1, buffer_ms // 20) if buffer_ms % 20 == 0 else 1
        self.heart_beat = _int(ch.get_var("STREAM_HEART_BEAT"), 0)

    def start(self) -> None:
        self._greenlets.append(gevent.spawn(self._run))

    # -- connecting and sending ---------------------------------------------------------
    def _run(self) -> None:
        headers = []
        extra = self.ch.get_var("STREAM_EXTRA_HEADERS")
        if extra:
            try:
                headers = [f"{k}: {v}" for k, v in json.loads(extra).items() if isinstance(v, str)]
            except (ValueError, AttributeError):
                headers = []
        try:
            with gevent.Timeout(self.mod.connect_timeout, TimeoutError):
                ws = websocket.create_connection(self.url, timeout=self.mod.connect_timeout, header=headers,
                                                 enable_multithread=True)
        except (TimeoutError, socket.timeout, websocket.WebSocketTimeoutException):
            return self._error(10, "Connection timed out")
        except ConnectionRefusedError:
            return self._error(6, "Connection refused (system error 111)")
        except websocket.WebSocketBadStatusException:
            return self._error(6, "WebSocket upgrade failed")
        except (OSError, websocket.WebSocketException) as exc:
            return self._error(6, str(exc) or type(exc).__name__)
        if self.state != "connecting":  # stopped or hung up meanwhile
            ws.close()
            return
        ws.settimeout(None)
        self.ws = ws
        self.state = "connected"
        if self.metadata:
            self._send(lambda: ws.send(self.metadata))
        self._custom("mod_audio_stream::connect", '{"status":"connected"}')
        self._greenlets.append(gevent.spawn(self._read_loop))
        self._send_loop()
        if self.state == "connected":  # the channel vanished (simulator crash): drop the socket
            self.mod.forget(self)
            self.state = "closed"
            ws.shutdown()

    def _send_loop(self) -> None:
        frame_bytes = codec.l16_frame_bytes(self.rate, self.channels)
        ptime = 0.020 * self.frames_per_message
        started = time.monotonic()
        tick = 0
        source, offset, pcm = None, 0, b""
        last_ping = started
        while self.state == "connected" and self._alive():
            tick += 1
            delay = started + tick * ptime - time.monotonic()
            if delay > 0:
                gevent.sleep(delay)
            if self.state != "connected" or not self._alive():
                return
            audio = getattr(self.ch.session, "caller_audio", b"") if self.ch.session else b""
            if audio is not source:
                source, offset = audio, 0
                pcm = self._prepare(audio)
            need = frame_bytes * self.frames_per_message
            if pcm:
                chunk = bytearray()
                while len(chunk) < need:
                    piece = pcm[offset:offset + need - len(chunk)]
                    chunk += piece
                    offset = (offset + len(piece)) % len(pcm)
                data = bytes(chunk)
            else:
                data = bytes(need)
            if self.paused:
                continue
            if not self._send(lambda: self.ws.send_binary(data)):
                return
            self.sent_frames += self.frames_per_message
            if self.heart_beat and time.monotonic() - last_ping >= self.heart_beat:
                last_ping = time.monotonic()
                self._send(lambda: self.ws.ping())

    def _prepare(self, audio: bytes) -> bytes:
        """The channel's 8 kHz caller audio at the stream's rate and channel count."""
        if not audio:
            return b""
        pcm = audio if self.rate == 8000 else codec.resample(audio, 8000, self.rate) if self.rate == 16000 \
            else _repeat_samples(audio, self.rate // 8000)
        if self.channels == 2:
            mono = memoryview(pcm).cast("h")
            stereo = bytearray(len(pcm) * 2)
            view = memoryview(stereo).cast("h")
            view[0::2] = mono
            pcm = bytes(stereo)
        return pcm

    def _send(self, fn) -> bool:
        try:
            fn()
            return True
        except (OSError, websocket.WebSocketException) as exc:
            if self.state == "connected":
                self._error(1, f"IO error: {exc}")
            return False

    def send_text(self, text: str) -> bool:
        if self.state != "connected" or self.ws is None:
            return False
        return self._send(lambda: self.ws.send(text))

    def _alive(self) -> bool:
        ch = self.ch
        return not ch.hungup and not ch.destroyed and self.sim.channels.get(ch.uuid) is ch

    # -- receiving ------------------------------------------------------------------------
    def _read_loop(self) -> None:
        ws = self.ws
        while self.state == "connected":
            try:
                opcode, frame = ws.recv_data_frame(True)
            except (OSError, websocket.WebSocketException) as exc:
                if self.state == "connected":
                    self._error(1, f"IO error: {exc}" if str(exc) else "IO error")
                return
            if opcode == websocket.ABNF.OPCODE_TEXT:
                self._text(frame.data.decode("utf-8", "replace"))
            elif opcode == websocket.ABNF.OPCODE_BINARY:
                self.received_bytes += len(frame.data)
                if self.mod.build == "bidirectional":
                    self._buffer(bytes(frame.data))
                self.sim._notify()
            elif opcode == websocket.ABNF.OPCODE_CLOSE:
                data = frame.data or b""
                code = struct.unpack("!H", data[:2])[0] if len(data) >= 2 else 1005
                reason = data[2:].decode("utf-8", "replace") or ("Normal closure" if code == 1000 else "")
                if self.state == "connected":
                    self.state = "disconnected"  # the bug stays attached, nothing is sent
                    body = json.dumps({"status": "disconnected", "message": {"code": code, "reason": reason}},
                                      separators=(",", ":"), ensure_ascii=False)
                    self._custom("mod_audio_stream::disconnect", body)
                try:
                    ws.shutdown()
                except Exception:
                    pass
                return

    def _text(self, text: str) -> None:
        try:
            msg = json.loads(text)
        except ValueError:
            msg = None
        if isinstance(msg, dict) and msg.get("type") == "streamAudio":
            body = self._write_file(msg.get("data"))
            if body is not None:
                self._custom("mod_audio_stream::play", body)
                return
        if isinstance(msg, dict) and msg.get("type") == "clearAudio" and self.mod.build == "bidirectional":
            self.ch.output.clear(time.monotonic())
            self.sim._notify()
        self._custom("mod_audio_stream::json", text)

    def _write_file(self, data) -> str | None:
        """Files form: write the audio, return the ``::play`` body (None: unusable)."""
        if not isinstance(data, dict):
            return None
        kind, audio = data.get("audioDataType"), data.get("audioData")
        if not isinstance(kind, str) or not isinstance(audio, str):
            return None
        if kind == "raw":
            ext = RAW_EXT.get(data.get("sampleRate"))
            if ext is None:
                return None
        elif kind in FILE_TYPES:
            ext = kind
        else:
            return None
        try:
            raw = base64.b64decode(audio, validate=True)
        except (binascii.Error, ValueError):
            return None
        path = os.path.join(self.mod.temp_dir, f"{self.ch.uuid}_{len(self.files)}.tmp.{ext}")
        try:
            with open(path, "wb") as f:
                f.write(raw)
        except OSError:
            return None
        self.files.append(path)
        body = {k: v for k, v in data.items() if k != "audioData"}
        body["file"] = path
        return json.dumps(body, separators=(",", ":"), ensure_ascii=False)

    def _buffer(self, data: bytes) -> None:
        """Bidirectional build: BINARY audio into the playout buffer (module docstring)."""
        now = time.monotonic()
        if self.rate not in (8000, 16000):
            self.dropped_bytes += len(data)
            return
        data = self._odd + data
        self._odd = data[len(data) - len(data) % 2:]
        data = data[:len(data) - len(self._odd)]
        bytes_per_sample = 2 * self.rate // 8000  # bytes at the stream's rate per 8 kHz sample
        room = max(0, PLAYOUT_BUFFER_BYTES - self.ch.output.buffered_samples(now) * bytes_per_sample)
        room -= room % bytes_per_sample
        self.dropped_bytes += max(0, len(data) - room)
        data = data[:room]
        if not data:
            return
        self.ch.output.feed(now, self._resampler.process(data) if self._resampler else data)

    @property
    def unplayed_bytes(self) -> int:
        """Buffered bytes (at the stream's rate) that no frame has played yet: all of them
        on a channel that writes no frames."""
        return self.ch.output.pending_samples * 2 * self.rate // 8000

    # -- ending ---------------------------------------------------------------------------
    def stop(self, text: str | None) -> None:
        """API ``stop``: last text, close 1000, MEDIA_BUG_STOP, delete the files (and the
        bidirectional build's buffer)."""
        self.mod.forget(self)
        self.close_local(text)
        if self.mod.build == "bidirectional":
            self.ch.output.clear(time.monotonic())
        self.ch.fire("MEDIA_BUG_STOP", pre=BUG, calling=("switch_core_media_bug.c",
                                                         "switch_core_media_bug_destroy", 84))

    def close_local(self, text: str | None) -> None:
        """Stop or hangup: close with 1000, no event (the callbacks are detached first)."""
        was = self.state
        self.state = "closed"
        current = gevent.getcurrent()
        for greenlet in self._greenlets:
            if greenlet is not current:
                greenlet.kill(block=False)
        ws = self.ws
        if ws is not None and was == "connected":
            try:
                if text:
                    ws.send(text)
                ws.send_close(1000, b"Normal closure")
            except (OSError, websocket.WebSocketException):
                pass
        if ws is not None:
            try:
                ws.shutdown()
            except Exception:
                pass
        for path in self.files:
            try:
                os.unlink(path)
            except OSError:
                pass

    def _error(self, code: int, text: str) -> None:
        """Connection failure: ``::error``, and the bug is closed."""
        if self.state == "closed":
            return
        self.state = "closed"
        self.mod.forget(self)
        if self.ws is not None:
            try:
                self.ws.shutdown()
            except Exception:
                pass
        body = json.dumps({"status": "error", "message": {"code": code, "error": text}}, separators=(",", ":"),
                          ensure_ascii=False)
        if self._alive():
            self._custom("mod_audio_stream::error", body)

    def _custom(self, subclass: str, body: str) -> None:
        if not self._alive():
            return
        self.ch.fire("CUSTOM", prefix=[("Event-Subclass", subclass)], subclass=subclass, body=body, calling=CALLING)


def _int(value: str | None, default: int) -> int:
    try:
        return int(value) if value is not None else default
    except ValueError:
        return default


def _repeat_samples(pcm: bytes, factor: int) -> bytes:
    view = memoryview(pcm).cast("h")
    out = bytearray(len(pcm) * factor)
    target = memoryview(out).cast("h")
    for i in range(factor):
        target[i::factor] = view
    return bytes(out)


def heard_pcm(ch) -> bytes:
    """Everything the channel's far end heard (``channel.heard``), joined."""
    return b"".join(pcm for _, pcm in ch.heard)

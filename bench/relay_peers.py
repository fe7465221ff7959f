"""The two ends of ``media_relay.py``: a fake FreeSWITCH and a Twilio-protocol echo bot.

Both are lean on purpose (each runs in its own process and must not be what limits the
bench): WebSocket framing is done by hand here rather than with a library, frames are
sent unfragmented, and the client masks with the all-zero key (valid: RFC 6455 only asks
for a mask, and a zero mask leaves the payload as it is).

* **Tagged audio.**  Every 20 ms frame carries its sequence number and a send time
  (``time.monotonic()``, one clock for every process on the host) in its first 24
  mu-law bytes, one hex digit per byte as codes 0x80..0x8F (loud codes that survive the
  bridge's mu-law -> L16 -> mu-law round trip exactly; the rest is 0x95, never silent,
  so the playout never skips it).  The bot reads the tag of what reaches it (caller ->
  bot latency) and echoes the frame with its own send time (bot -> caller latency, read
  by the fake FreeSWITCH).
* **Fake FreeSWITCH** (``run_fs``): per call, mod_audio_stream's framing: one metadata
  TEXT frame, then 320-byte L16 BINARY frames every 20 ms, all calls driven by one clock
  spread over 20 phases of 1 ms; it reads back binary L16 (``stream`` form) or
  ``streamAudio`` JSON (``files`` form).  For ``files`` it also plays FreeSWITCH's ESL
  part over a line protocol (``esl_lines``): ``E <uuid> play <path>`` when a file is
  written, ``E <uuid> stop <path>`` when its playback ends (files play back to back
  after the bridge's ``P <uuid> <path>``, i.e. its ``sendmsg`` playback).
* **Echo bot** (``run_bot``): a WebSocket server speaking Twilio Media Streams: it takes
  ``connected``/``start``, echoes each ``media`` as a ``media`` of its own, answers pings.

Latencies go into ``Histogram``s (0.1 ms bins), counted only for frames of the measured
window (sequence ``warm <= seq < warm + measured``), so ramp-up and the tail in flight
at the end are left out and every lost frame of the window is counted.
"""

from __future__ import annotations

import base64
import hashlib
import heapq
import json
import os
import socket
import struct
import time

import gevent
from gevent.server import StreamServer

from gateway.media import codec

FRAME_SECONDS = 0.02
PHASES = 20  # the fake FreeSWITCH's clock wakes every 1 ms, for 1/20 of the calls
LATE = 0.020  # a frame later than one frame period missed its slot

_HEX = b"0123456789abcdef"
_TO_CODES = bytes.maketrans(_HEX, bytes(range(0x80, 0x90)))
_FROM_CODES = bytes.maketrans(bytes(range(0x80, 0x90)), _HEX)
_TAG = struct.Struct("<Id")
_TAG_BYTES = 2 * _TAG.size
_FILL = b"\x95" * (codec.ULAW_FRAME_BYTES - _TAG_BYTES)
_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


def tag(seq: int, at: float) -> bytes:
    """A 160-byte mu-law frame carrying ``seq`` and ``at``."""
    return _TAG.pack(seq, at).hex().encode().translate(_TO_CODES) + _FILL


def read_tag(ulaw: bytes) -> tuple[int, float] | None:
    try:
        return _TAG.unpack(bytes.fromhex(ulaw[:_TAG_BYTES].translate(_FROM_CODES).decode()))
    except (ValueError, struct.error):
        return None


class Histogram:
    """Latencies in 0.1 ms bins up to 2 s (the rest in the last bin)."""

    BINS = 20001

    def __init__(self) -> None:
        self.bins = [0] * self.BINS
        self.count = 0

    def add(self, seconds: float, n: int = 1) -> None:
        i = int(seconds * 10000)
        self.bins[0 if i < 0 else i if i < self.BINS else self.BINS - 1] += n
        self.count += n

    def merge(self, other: "Histogram") -> None:
        self.bins = [a + b for a, b in zip(self.bins, other.bins)]
        self.count += other.count

    def percentile(self, q: float) -> float:
        if not self.count:
            return float("nan")
        rank, seen = q * self.count, 0
        for i, n in enumerate(self.bins):
            seen += n
            if seen >= rank:
                return (i + 1) / 10000
        return self.BINS / 10000

    def over(self, seconds: float) -> int:
        return sum(self.bins[int(seconds * 10000):])


class Window:
    """Which sequence numbers are measured."""

    def __init__(self, warm: int, measured: int) -> None:
        self.first, self.end = warm, warm + measured

    def __contains__(self, seq: int) -> bool:
        return self.first <= seq < self.end


# -- WebSocket framing --------------------------------------------------------------------

def ws_frame(opcode: int, payload: bytes, mask: bool = False) -> bytes:
    n = len(payload)
    bit = 0x80 if mask else 0
    if n < 126:
        head = bytes((0x80 | opcode, bit | n))
    elif n < 65536:
        head = bytes((0x80 | opcode, bit | 126)) + n.to_bytes(2, "big")
    else:
        head = bytes((0x80 | opcode, bit | 127)) + n.to_bytes(8, "big")
    return head + b"\0\0\0\0" + payload if mask else head + payload


def _unmask(key: bytes, data: bytes) -> bytes:
    if key == b"\0\0\0\0":
        return data
    n = len(data)
    stream = (key * (n // 4 + 1))[:n]
    return (int.from_bytes(data, "little") ^ int.from_bytes(stream, "little")).to_bytes(n, "little")


class FrameReader:
    """Unfragmented WebSocket frames out of a byte stream: ``feed`` -> [(opcode, payload)]."""

    def __init__(self) -> None:
        self.buf = bytearray()

    def feed(self, data: bytes) -> list[tuple[int, bytes]]:
        buf = self.buf
        buf += data
        out = []
        while len(buf) >= 2:
            opcode, length, at = buf[0] & 0x0F, buf[1] & 0x7F, 2
            masked = buf[1] & 0x80
            if length == 126:
                if len(buf) < 4:
                    break
                length, at = int.from_bytes(buf[2:4], "big"), 4
            elif length == 127:
                if len(buf) < 10:
                    break
                length, at = int.from_bytes(buf[2:10], "big"), 10
            key = b""
            if masked:
                key, at = bytes(buf[at:at + 4]), at + 4
            if len(buf) < at + length:
                break
            payload = bytes(buf[at:at + length])
            del buf[:at + length]
            out.append((opcode, _unmask(key, payload) if masked else payload))
        return out


def _read_head(sock) -> tuple[bytes, bytes]:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("closed during the handshake")
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    return head, rest


def ws_connect(url: str):
    """A client WebSocket (as mod_audio_stream opens it): (socket, bytes already read)."""
    hostport, _, path = url.removeprefix("ws://").partition("/")
    host, _, port = hostport.partition(":")
    sock = socket.create_connection((host, int(port)))
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall((f"GET /{path} HTTP/1.1\r\nHost: {hostport}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                  f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n").encode())
    head, rest = _read_head(sock)
    if b" 101 " not in head.split(b"\r\n", 1)[0]:
        raise ConnectionError(f"upgrade refused: {head[:80]!r}")
    return sock, rest


def ws_accept(sock) -> bytes:
    """The server side of the upgrade; returns bytes already read past it."""
    head, rest = _read_head(sock)
    key = b""
    for line in head.split(b"\r\n"):
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"sec-websocket-key":
            key = value.strip()
    accept = base64.b64encode(hashlib.sha1(key + _GUID).digest())
    sock.sendall(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                 b"Sec-WebSocket-Accept: " + accept + b"\r\n\r\n")
    return rest


# -- the echo bot -------------------------------------------------------------------------

class EchoBot:
    def __init__(self, window: Window) -> None:
        self.window = window
        self.up = Histogram()
        self.received = 0
        self.connections = 0
        self.server = StreamServer(("127.0.0.1", 0), self._handle)

    def _handle(self, sock, address) -> None:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.connections += 1
        reader, sid, window = FrameReader(), "", self.window
        try:
            pending = ws_accept(sock)
            while True:
                out = []
                for opcode, payload in reader.feed(pending):
                    if opcode == 1:
                        msg = json.loads(payload)
                        event = msg.get("event")
                        if event == "media":
                            got = read_tag(base64.b64decode(msg["media"]["payload"]))
                            if got is None:
                                continue
                            now = time.monotonic()
                            if got[0] in window:
                                self.up.add(now - got[1])
                                self.received += 1
                            echo = base64.b64encode(tag(got[0], now)).decode()
                            out.append(ws_frame(1, json.dumps(
                                {"event": "media", "streamSid": sid, "media": {"payload": echo}}).encode()))
                        elif event == "start":
                            sid = msg["streamSid"]
                    elif opcode == 9:
                        out.append(ws_frame(10, payload))
                    elif opcode == 8:
                        sock.sendall(ws_frame(8, payload[:2]))
                        return
                if out:
                    sock.sendall(b"".join(out))
                pending = sock.recv(65536)
                if not pending:
                    return
        except OSError:
            return
        finally:
            sock.close()


# -- the fake FreeSWITCH --------------------------------------------------------------------

class FakeCall:
    def __init__(self, fs: "FakeFreeSwitch", uuid: str, url: str) -> None:
        self.fs, self.uuid, self.url = fs, uuid, url
        self.sock = None
        self.l16 = bytearray()
        self.files: dict[str, float] = {}  # path -> seconds, written and not yet played
        self.plays_until = 0.0
        self.written = 0

    def connect(self) -> None:
        self.sock, rest = ws_connect(self.url)
        self.sock.sendall(ws_frame(1, json.dumps({"call_uuid": self.uuid, "sampleRate": 8000}).encode(), True))
        gevent.spawn(self._read, rest)

    def _read(self, pending: bytes) -> None:
        reader = FrameReader()
        try:
            while True:
                for opcode, payload in reader.feed(pending):
                    if opcode == 2:
                        self._heard_l16(payload)
                    elif opcode == 1:
                        self._stream_audio(payload)
                    elif opcode == 9:
                        self.sock.sendall(ws_frame(10, payload, True))
                pending = self.sock.recv(65536)
                if not pending:
                    return
        except OSError:
            return

    def _heard_l16(self, pcm: bytes) -> None:
        """Binary L16 (``stream`` form): each 20 ms frame's bot send time -> its arrival."""
        self.l16 += pcm
        now, fs = time.monotonic(), self.fs
        while len(self.l16) >= 320:
            got = read_tag(codec.l16_to_ulaw(bytes(self.l16[:320])))
            del self.l16[:320]
            if got is not None and got[0] in fs.window:
                fs.down.add(now - got[1])
                fs.received += 1

    def _stream_audio(self, text: bytes) -> None:
        """``streamAudio`` (``files`` form): the chunk arrives when its last frame was
        sent by the bot plus what the bridge added; counted once per frame it holds."""
        now, fs = time.monotonic(), self.fs
        msg = json.loads(text)
        if msg.get("type") != "streamAudio":
            return
        wav = base64.b64decode(msg["data"]["audioData"])
        ulaw = codec.l16_to_ulaw(wav[44:])
        tags = [read_tag(ulaw[i:i + 160]) for i in range(0, len(ulaw) - 159, 160)]
        tags = [t for t in tags if t is not None]
        measured = sum(1 for seq, _ in tags if seq in fs.window)
        if measured:
            fs.down.add(now - max(at for _, at in tags), measured)
            fs.received += measured
        self.written += 1
        path = f"/tmp/fake-fs/{self.uuid}/{self.written}.r8"
        self.files[path] = len(ulaw) / 8000
        fs.esl_send(f"E {self.uuid} play {path}\n")

    def play(self, path: str) -> None:
        """The bridge's ``sendmsg`` playback: files play back to back."""
        seconds = self.files.pop(path, 0.0)
        start = max(time.monotonic(), self.plays_until)
        self.plays_until = start + seconds
        self.fs.at(self.plays_until, f"E {self.uuid} stop {path}\n")


class FakeFreeSwitch:
    def __init__(self, calls: list[tuple[str, str]], window: Window, esl_port: int | None) -> None:
        self.window = window
        self.calls = [FakeCall(self, uuid, url) for uuid, url in calls]
        self.by_uuid = {call.uuid: call for call in self.calls}
        self.down = Histogram()
        self.slip = Histogram()
        self.received = 0
        self.sent = 0
        self._timers: list[tuple[float, int, str]] = []
        self._timer_seq = 0
        self._esl = None
        if esl_port is not None:
            self._esl = socket.create_connection(("127.0.0.1", esl_port))
            self._esl.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            gevent.spawn(self._esl_commands)
            gevent.spawn(self._timer_loop)

    def connect(self) -> None:
        pool = [gevent.spawn(call.connect) for call in self.calls]
        gevent.joinall(pool, raise_error=True)

    def esl_send(self, line: str) -> None:
        self._esl.sendall(line.encode())

    def at(self, when: float, line: str) -> None:
        self._timer_seq += 1
        heapq.heappush(self._timers, (when, self._timer_seq, line))

    def _timer_loop(self) -> None:
        while True:
            now = time.monotonic()
            lines = []
            while self._timers and self._timers[0][0] <= now:
                lines.append(heapq.heappop(self._timers)[2])
            if lines:
                self._esl.sendall("".join(lines).encode())
            gevent.sleep(0.005)

    def _esl_commands(self) -> None:
        buf = b""
        while True:
            data = self._esl.recv(65536)
            if not data:
                return
            buf += data
            *lines, buf = buf.split(b"\n")
            for line in lines:
                parts = line.decode().split(" ")
                call = self.by_uuid.get(parts[1]) if len(parts) > 1 else None
                if call is not None and parts[0] == "P":
                    call.play(parts[2])

    def run_clock(self, t0: float, frames: int) -> None:
        """Every call sends frame ``k`` at ``t0 + k * 20 ms + its phase``."""
        groups = [self.calls[g::PHASES] for g in range(PHASES)]
        for k in range(frames):
            for g, group in enumerate(groups):
                due = t0 + k * FRAME_SECONDS + g * FRAME_SECONDS / PHASES
                delay = due - time.monotonic()
                if delay > 0:
                    gevent.sleep(delay)
                now = time.monotonic()
                if k in self.window:
                    self.slip.add(now - due, len(group))
                for call in group:
                    frame = ws_frame(2, codec.ulaw_to_l16(tag(k, time.monotonic())), True)
                    try:
                        call.sock.sendall(frame)
                    except OSError:
                        continue
                    if k in self.window:
                        self.sent += 1

"""What ``media_relay.py`` measures: the bridge, and a raw relay on the same stack.

* **The bridge** (``BridgeUnderTest``): the real ``MediaBridge`` and one ``CallStream`` per
  call, each with a real ``WebsocketBotLink`` (the connector a ``ws://`` bot URL gets),
  wired as ``gateway.calls.media_session.MediaSessions`` wires them at answer
  (``bridge.open`` then ``stream.set_bot``) but without the call controller and the
  database: their work happens at call set-up and hang-up, not per frame, and what is
  measured here is the per-frame path.  In the ``files`` form the controller's part
  that is per chunk is kept: its ``sendmsg`` playback (``Control.play``) goes out as a
  line on a socket, and FreeSWITCH's ``mod_audio_stream::play`` / PLAYBACK_STOP come
  back the same way and reach the stream through ``bridge.route_event``, as the
  controller's event hook does (relay_peers' line protocol).
* **The raw relay** (``RawRelay``): the least a relay on wsproto + gevent +
  websocket-client can do for the same traffic: per call, the FreeSWITCH socket's
  reader turns each L16 frame into mu-law and sends the Twilio ``media`` JSON to the
  bot; a reader on the bot's socket turns each ``media`` back into L16 and sends it to
  FreeSWITCH.  No clock, no queue, no marks, no limits.
"""

from __future__ import annotations

import base64
import json
import socket
import uuid as uuidlib

import gevent
import websocket
from gevent.lock import Semaphore
from gevent.pool import Pool
from gevent.server import StreamServer
from wsproto import ConnectionType, WSConnection
from wsproto.events import AcceptConnection, BytesMessage, CloseConnection, Ping, Request, TextMessage

from gateway.media import codec
from gateway.media.bridge import MediaBridge
from gateway.media.connectors.base import CallInfo
from gateway.media.connectors.websocket_bot import WebsocketBotLink


class _Event:
    """The few ESL event accessors a ``CallStream`` reads."""

    __slots__ = ("name", "subclass", "body", "headers")

    def __init__(self, name: str, subclass: str | None = None, body: str | None = None, **headers) -> None:
        self.name, self.subclass, self.body, self.headers = name, subclass, body, headers

    def get(self, key: str, default=None):
        return self.headers.get(key, default)


class _LineEsl:
    """FreeSWITCH's ESL reduced to the lines of the ``files`` form (see relay_peers)."""

    def __init__(self, bridge: MediaBridge) -> None:
        self.bridge = bridge
        self.sock = None
        self.lock = Semaphore()
        self.server = StreamServer(("127.0.0.1", 0), self._handle)
        self.server.start()
        self.port = self.server.server_port

    def play(self, call_uuid: str, path: str) -> None:
        self._send(f"P {call_uuid} {path}\n")

    def break_playback(self, call_uuid: str) -> None:
        self._send(f"B {call_uuid}\n")

    def _send(self, line: str) -> None:
        with self.lock:
            self.sock.sendall(line.encode())

    def _handle(self, sock, address) -> None:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock, buf = sock, b""
        while True:
            data = sock.recv(65536)
            if not data:
                return
            buf += data
            *lines, buf = buf.split(b"\n")
            for line in lines:
                _, call_uuid, what, path = line.decode().split(" ", 3)
                if what == "play":
                    event = _Event("CUSTOM", "mod_audio_stream::play", json.dumps({"file": path}))
                else:
                    event = _Event("PLAYBACK_STOP", **{"Playback-File-Path": path})
                self.bridge.route_event(call_uuid, event)


class BridgeUnderTest:
    def __init__(self, form: str, bot_url: str) -> None:
        self.form, self.bot_url = form, bot_url
        self.bridge = MediaBridge()
        self.bridge.start()
        self.esl = _LineEsl(self.bridge)

    def open_calls(self, n: int) -> list[tuple[str, str]]:
        def one(_):
            call_uuid = str(uuidlib.uuid4())
            stream = self.bridge.open(call_uuid, form=self.form, control=self.esl)
            stream.set_bot(WebsocketBotLink(self.bot_url, CallInfo(call_uuid, "1")))
            return call_uuid, self.bridge.url_for(stream)
        return list(_pool_map(one, range(n)))

    def stop(self) -> None:
        self.bridge.stop()


class _RawCall:
    def __init__(self, sock, ws: WSConnection, bot_url: str) -> None:
        self.sock, self.ws, self.lock = sock, ws, Semaphore()
        self.bot = websocket.create_connection(bot_url, enable_multithread=True, skip_utf8_validation=True)
        self.sid = "MZ" + uuidlib.uuid4().hex
        self.seq = self.chunk = 0
        self.bot.send(json.dumps({"event": "connected", "protocol": "Call", "version": "1.0.0"}))
        self.bot.send(json.dumps({"event": "start", "sequenceNumber": "1", "streamSid": self.sid, "start": {
            "streamSid": self.sid, "callSid": "CA" + uuidlib.uuid4().hex, "accountSid": "AC" + uuidlib.uuid4().hex,
            "tracks": ["inbound"], "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1},
            "customParameters": {}}}))
        self.seq = 1
        gevent.spawn(self._from_bot)

    def to_bot(self, l16: bytes) -> None:
        self.seq += 1
        self.chunk += 1
        self.bot.send(json.dumps({"event": "media", "sequenceNumber": str(self.seq), "media": {
            "track": "inbound", "chunk": str(self.chunk), "timestamp": str((self.chunk - 1) * 20),
            "payload": base64.b64encode(codec.l16_to_ulaw(l16)).decode("ascii")}, "streamSid": self.sid},
            separators=(",", ":")))

    def _from_bot(self) -> None:
        while True:
            try:
                opcode, data = self.bot.recv_data()
            except (OSError, websocket.WebSocketException):
                return
            if opcode != websocket.ABNF.OPCODE_TEXT:
                continue
            msg = json.loads(data)
            if msg.get("event") == "media":
                out = self.ws.send(BytesMessage(data=codec.ulaw_to_l16(base64.b64decode(msg["media"]["payload"]))))
                with self.lock:
                    self.sock.sendall(out)


class RawRelay:
    def __init__(self, bot_url: str) -> None:
        self.bot_url = bot_url
        self.server = StreamServer(("127.0.0.1", 0), self._handle)
        self.server.start()
        self.port = self.server.server_port
        self.esl = None

    def open_calls(self, n: int) -> list[tuple[str, str]]:
        return [(str(uuidlib.uuid4()), f"ws://127.0.0.1:{self.port}/stream/{i}") for i in range(n)]

    def _handle(self, sock, address) -> None:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        ws = WSConnection(ConnectionType.SERVER)
        call = None
        while True:
            data = sock.recv(65536)
            ws.receive_data(data or None)
            for event in ws.events():
                if isinstance(event, Request):
                    sock.sendall(ws.send(AcceptConnection()))
                    call = _RawCall(sock, ws, self.bot_url)
                elif isinstance(event, BytesMessage) and call is not None:
                    call.to_bot(event.data)
                elif isinstance(event, Ping):
                    sock.sendall(ws.send(event.response()))
                elif isinstance(event, (CloseConnection, TextMessage)):
                    pass
            if not data:
                return

    def stop(self) -> None:
        self.server.stop(timeout=1)


def _pool_map(fn, items, size: int = 20):
    return Pool(size).imap(fn, items)

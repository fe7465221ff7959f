"""Test peers for the media bridge, on 127.0.0.1 port 0:

* ``WsServer``: a small WebSocket server (wsproto over a gevent StreamServer) that records
  every message with its arrival time and lets the test send, ping or close;
* ``TwilioBot``: a bot speaking Twilio Media Streams (what pipecat/vocode expect), with
  helpers to wait for the gateway's messages and to send media/mark/clear;
* (ElevenLabs and Vapi stand-ins are in ``provider_standins``);
* ``media_rig``: simulator + controller + media bridge + MediaSessions, wired like
  ``Gateway`` does.
"""

from __future__ import annotations

import base64
import json
import time
from dataclasses import dataclass, field

import gevent
from gevent.event import Event as Flag
from gevent.lock import Semaphore
from gevent.server import StreamServer
from wsproto import ConnectionType, WSConnection
from wsproto.events import (
    AcceptConnection, BytesMessage, CloseConnection, Ping, RejectConnection, Request, TextMessage,
)
from wsproto.utilities import LocalProtocolError

from gateway.calls.controller import CallController
from gateway.calls.media_session import MediaSessions
from gateway.config import MediaSettings, NodeConfig
from gateway.media import codec
from gateway.media.bridge import MediaBridge
from gateway.webhooks.outbox import outbox_hook, outbox_log_hook


FRAME_BYTES = 160  # 20 ms of mu-law


def speech(seconds: float, freq: float = 440.0) -> bytes:
    """A tone loud enough to tell from silence, as a bot's mu-law."""
    return codec.l16_to_ulaw(codec.tone(seconds, freq, amplitude=6000))


class Waiter:
    """``wait_for(predicate)`` woken by ``poke()``; no sleeps."""

    def __init__(self) -> None:
        self._changed = Flag()

    def poke(self) -> None:
        changed, self._changed = self._changed, Flag()
        changed.set()

    def wait_for(self, predicate, timeout: float = 5.0, what: str = "condition"):
        deadline = time.monotonic() + timeout
        while True:
            changed = self._changed
            value = predicate()
            if value:
                return value
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"{what} not met within {timeout}s")
            changed.wait(min(remaining, 0.25))


@dataclass
class Peer:
    """One accepted connection."""

    server: "WsServer"
    sock: object
    ws: WSConnection
    path: str
    headers: list
    messages: list = field(default_factory=list)  # (t, "text"|"binary", data)
    closed: bool = False
    close_code: int | None = None
    lock: Semaphore = field(default_factory=Semaphore)

    def _send(self, event) -> None:
        with self.lock:
            if self.closed:
                return
            try:
                self.sock.sendall(self.ws.send(event))
            except (OSError, LocalProtocolError):
                self.closed = True

    def send_text(self, text: str) -> None:
        self._send(TextMessage(data=text))

    def send_bytes(self, data: bytes) -> None:
        self._send(BytesMessage(data=data))

    def ping(self) -> None:
        self._send(Ping(payload=b"hb"))

    def close(self, code: int = 1000, reason: str = "") -> None:
        self._send(CloseConnection(code=code, reason=reason))

    def abort(self) -> None:
        self.closed = True
        try:
            self.sock.close()
        except OSError:
            pass

    def texts(self) -> list[str]:
        return [data for _, kind, data in self.messages if kind == "text"]

    def json(self) -> list[dict]:
        out = []
        for text in self.texts():
            try:
                out.append(json.loads(text))
            except ValueError:
                pass
        return out


class WsServer(Waiter):
    """``refuse``: answer the upgrade with that HTTP status; ``ssl_context``: a ``wss://``
    server.  ``reading`` cleared: the server stops reading its connections (a peer whose
    socket fills up), set: it reads again."""

    def __init__(self, *, refuse: int | None = None, accept_delay: float = 0.0, ssl_context=None) -> None:
        super().__init__()
        self.refuse = refuse
        self.accept_delay = accept_delay
        self.peers: list[Peer] = []
        self.on_connect = None  # fn(peer)
        self.on_message = None  # fn(peer, kind, data)
        self.offered_extensions: list = []
        self.reading = Flag()
        self.reading.set()
        tls = {"ssl_context": ssl_context} if ssl_context is not None else {}
        self._server = StreamServer(("127.0.0.1", 0), self._handle, **tls)
        self._server.start()
        self.port = self._server.server_port

    def url(self, path: str = "/bot") -> str:
        return f"ws://127.0.0.1:{self.port}{path}"

    def stop(self) -> None:
        for peer in self.peers:
            peer.abort()
        self._server.stop(timeout=1)

    def _handle(self, sock, address) -> None:
        ws = WSConnection(ConnectionType.SERVER)
        request = None
        while request is None:
            data = sock.recv(65536)
            if not data:
                return
            ws.receive_data(data)
            for event in ws.events():
                if isinstance(event, Request):
                    request = event
        if self.accept_delay:
            gevent.sleep(self.accept_delay)
        if self.refuse:
            sock.sendall(ws.send(RejectConnection(status_code=self.refuse)))
            sock.close()
            return
        self.offered_extensions.append(request.extensions)
        sock.sendall(ws.send(AcceptConnection()))
        peer = Peer(self, sock, ws, request.target, list(request.extra_headers))
        self.peers.append(peer)
        if self.on_connect:
            self.on_connect(peer)
        self.poke()
        parts: list = []
        try:
            while True:
                self.reading.wait()
                try:
                    data = sock.recv(65536)
                except OSError:
                    data = b""
                ws.receive_data(data or None)
                for event in ws.events():
                    if isinstance(event, (TextMessage, BytesMessage)):
                        parts.append(event.data)
                        if event.message_finished:
                            kind = "text" if isinstance(event, TextMessage) else "binary"
                            payload = "".join(parts) if kind == "text" else b"".join(parts)
                            parts = []
                            peer.messages.append((time.monotonic(), kind, payload))
                            if self.on_message:
                                self.on_message(peer, kind, payload)
                            self.poke()
                    elif isinstance(event, Ping):
                        peer._send(event.response())
                    elif isinstance(event, CloseConnection):
                        peer.close_code = event.code
                        peer._send(event.response())
                        peer.closed = True
                        self.poke()
                        return
                if not data:
                    peer.closed = True
                    peer.close_code = peer.close_code or 1006
                    self.poke()
                    return
        finally:
            try:
                sock.close()
            except OSError:
                pass


class TwilioBot(WsServer):
    """A bot speaking Twilio Media Streams; records the gateway's events."""

    def events(self, peer_index: int = -1, event: str | None = None) -> list[dict]:
        if not self.peers:
            return []
        messages = self.peers[peer_index].json()
        return [m for m in messages if event is None or m.get("event") == event]

    def wait_event(self, event: str, count: int = 1, peer_index: int = -1, timeout: float = 5.0) -> list[dict]:
        return self.wait_for(lambda: len(self.events(peer_index, event)) >= count and self.events(peer_index, event),
                             timeout, f"{count} x {event}")

    def stream_sid(self, peer_index: int = -1) -> str:
        return self.wait_event("start", peer_index=peer_index)[0]["streamSid"]

    def send_media(self, ulaw: bytes, peer_index: int = -1) -> None:
        sid = self.stream_sid(peer_index)
        self.peers[peer_index].send_text(json.dumps(
            {"event": "media", "streamSid": sid, "media": {"payload": base64.b64encode(ulaw).decode()}}))

    def send_real_time(self, ulaw: bytes, peer_index: int = -1) -> float:
        """Speak like a real-time bot (a TTS stream): a 20 ms frame every 20 ms, paced on the
        clock; returns when it started."""
        started = time.monotonic()
        for n, at in enumerate(range(0, len(ulaw), FRAME_BYTES)):
            delay = started + n * 0.02 - time.monotonic()
            if delay > 0:
                gevent.sleep(delay)
            self.send_media(ulaw[at:at + FRAME_BYTES], peer_index)
        return started

    def send_mark(self, name: str, peer_index: int = -1) -> None:
        sid = self.stream_sid(peer_index)
        self.peers[peer_index].send_text(json.dumps({"event": "mark", "streamSid": sid, "mark": {"name": name}}))

    def send_clear(self, peer_index: int = -1) -> None:
        sid = self.stream_sid(peer_index)
        self.peers[peer_index].send_text(json.dumps({"event": "clear", "streamSid": sid}))

    def media_times(self, peer_index: int = -1) -> list[float]:
        return [t for t, kind, data in self.peers[peer_index].messages
                if kind == "text" and '"event":"media"' in data]

    def caller_audio(self, peer_index: int = -1) -> bytes:
        return b"".join(base64.b64decode(m["media"]["payload"]) for m in self.events(peer_index, "media"))

    def mark_times(self, peer_index: int = -1) -> dict[str, float]:
        out = {}
        for t, kind, data in self.peers[peer_index].messages:
            if kind == "text" and '"event":"mark"' in data:
                out[json.loads(data)["mark"]["name"]] = t
        return out


class MediaRig:
    """Simulator node + controller + bridge + MediaSessions; ``outbox=True`` also writes
    the webhooks (``gateway.webhooks.outbox``'s hooks, installed before the first link)."""

    def __init__(self, sim, settings: MediaSettings | None = None, outbox: bool = False, **kwargs) -> None:
        node = NodeConfig(f"127.0.0.1:{sim.port}", "127.0.0.1", sim.port, "ClueCon")
        self.sim = sim
        self.controller = CallController([node], command_timeout=2.0)
        if outbox:
            self.controller.transaction_hooks.append(outbox_hook)
            self.controller.log_hooks.append(outbox_log_hook)
        self.bridge = MediaBridge("127.0.0.1", 0)
        self.settings = settings or MediaSettings()
        self.media = MediaSessions(self.controller, self.bridge, self.settings, **kwargs)
        self.bridge.start()
        self.controller.start()
        assert self.controller.wait_connected(5)

    def stop(self) -> None:
        self.media.stop()
        self.bridge.stop()
        self.controller.stop()

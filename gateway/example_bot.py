"""A small voice bot speaking the Twilio Media Streams protocol: the demo's far side.

It accepts the gateway's WebSocket, greets the caller with a short tone followed by a
``mark``, then echoes the caller's audio back (an echo test, as on a phone network).
It keeps a log of what it received, which ``voicegw demo`` prints.  Run it on its own
with ``voicegw example-bot --listen 127.0.0.1:9000`` and point a call's ``socket_url``
at ``ws://127.0.0.1:9000/``.
"""

from __future__ import annotations

import base64
import json
import logging
from collections import Counter
from dataclasses import dataclass, field

from gevent.event import Event as Flag
from gevent.server import StreamServer
from wsproto import ConnectionType, WSConnection
from wsproto.events import AcceptConnection, CloseConnection, Ping, Request, TextMessage
from wsproto.utilities import LocalProtocolError, RemoteProtocolError

from gateway.media.codec import l16_to_ulaw, tone

logger = logging.getLogger(__name__)

GREETING = l16_to_ulaw(tone(0.6, 660.0))


@dataclass
class BotCall:
    """What the bot saw of one call."""

    stream_sid: str = ""
    call_sid: str = ""
    custom_parameters: dict = field(default_factory=dict)
    received: Counter = field(default_factory=Counter)  # event name -> count
    marks_echoed: list[str] = field(default_factory=list)
    dtmf: str = ""
    greeted: bool = False  # the greeting has played: echo from now on
    ended = None

    def __post_init__(self) -> None:
        self.ended = Flag()


class EchoBot:
    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self.server = StreamServer((host, port), self._serve)
        self.calls: list[BotCall] = []
        self.greeted = Flag()  # some call has heard its greeting through

    @property
    def url(self) -> str:
        host, port = self.server.address[:2]
        return f"ws://{host}:{port}/"

    def start(self) -> None:
        self.server.start()

    def stop(self) -> None:
        self.server.stop(timeout=1)

    def serve_forever(self) -> None:
        self.server.serve_forever()

    def _serve(self, sock, address) -> None:
        ws = WSConnection(ConnectionType.SERVER)
        call = BotCall()
        self.calls.append(call)
        try:
            while not call.ended.is_set():
                data = sock.recv(65536)
                ws.receive_data(data or None)
                for event in ws.events():
                    if isinstance(event, Request):
                        sock.sendall(ws.send(AcceptConnection()))
                    elif isinstance(event, TextMessage):
                        for reply in self._on_message(call, event.data):
                            sock.sendall(ws.send(TextMessage(data=reply)))
                    elif isinstance(event, Ping):
                        sock.sendall(ws.send(event.response()))
                    elif isinstance(event, CloseConnection):
                        sock.sendall(ws.send(event.response()))
                        call.ended.set()
                if not data:
                    call.ended.set()
        except (OSError, LocalProtocolError, RemoteProtocolError) as exc:
            logger.info("example bot: connection ended: %s", exc)
        finally:
            call.ended.set()
            sock.close()

    def _on_message(self, call: BotCall, text: str) -> list[str]:
        try:
            message = json.loads(text)
        except ValueError:
            return []
        event = message.get("event", "?")
        call.received[event] += 1
        if event == "start":
            start = message.get("start", {})
            call.stream_sid, call.call_sid = start.get("streamSid", ""), start.get("callSid", "")
            call.custom_parameters = start.get("customParameters", {})
            return [self._media(call, GREETING), self._mark(call, "greeting")]
        if event == "mark":
            call.marks_echoed.append(message.get("mark", {}).get("name", ""))
            call.greeted = True
            self.greeted.set()
        elif event == "dtmf":
            call.dtmf += message.get("dtmf", {}).get("digit", "")
        elif event == "media" and call.greeted:
            return [self._media(call, base64.b64decode(message["media"]["payload"]))]
        elif event == "stop":
            call.ended.set()
        return []

    @staticmethod
    def _media(call: BotCall, ulaw: bytes) -> str:
        return json.dumps({"event": "media", "streamSid": call.stream_sid,
                           "media": {"payload": base64.b64encode(ulaw).decode()}})

    @staticmethod
    def _mark(call: BotCall, name: str) -> str:
        return json.dumps({"event": "mark", "streamSid": call.stream_sid, "mark": {"name": name}})

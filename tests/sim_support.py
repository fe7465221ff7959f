"""Helpers for the simulator tests: a raw ESL client on gevent sockets, and readers for the
real FreeSWITCH 1.10.12 captures in ``../shared/research/fs-captures``."""

from __future__ import annotations

import json
from pathlib import Path

import gevent
from gevent import socket
from gevent.event import Event as GEvent
from gevent.queue import Queue, Empty

from gateway.esl.protocol import Event, Message, MessageReader, encode_command

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
CAPTURES = SHARED / "research" / "fs-captures"
MARKER = b"===== events (verbatim wire bytes) =====\n"


class CapturedEvent:
    """One event of a capture (or of the simulator), parsed from plain wire bytes with
    the project's own parser: ordered header names (duplicates kept) and the body."""

    __slots__ = ("name", "items", "body", "raw")

    def __init__(self, message: Message) -> None:
        event = Event.from_message(message)
        self.raw = message.body
        self.items = event.items()
        self.body = event.body
        names = [v for k, v in self.items if k == "Event-Name"]
        # PRIVATE_COMMAND repeats the COMMAND block: the last Event-Name is the real one.
        self.name = names[-1] if names else ""

    def get(self, name: str, default=None):
        for key, value in self.items:
            if key == name:
                return value
        return default

    @property
    def uuid(self):
        return self.get("Unique-ID")

    @property
    def header_names(self) -> list[str]:
        return [k for k, _ in self.items]

    def label(self) -> str:
        if self.name == "CHANNEL_STATE":
            return f"CHANNEL_STATE({self.get('Channel-State')})"
        if self.name == "CHANNEL_CALLSTATE":
            return f"CHANNEL_CALLSTATE({self.get('Channel-Call-State')})"
        if self.name in ("CHANNEL_EXECUTE", "CHANNEL_EXECUTE_COMPLETE"):
            return f"{self.name}({self.get('Application')})"
        return self.name


def capture_events(name: str, fmt: str = "plain") -> list[CapturedEvent]:
    raw = (CAPTURES / f"{name}.{fmt}.wire").read_bytes()
    start = raw.index(MARKER) + len(MARKER)
    return [CapturedEvent(m) for m in MessageReader().feed(raw[start:]) if m.content_type.startswith("text/event")]


def capture_control(name: str) -> list[dict]:
    return json.loads((CAPTURES / f"{name}.control.json").read_text())


def capture_sent(name: str, conn: str = "ctl") -> list[str]:
    return [item["sent"] for item in capture_control(name) if item.get("conn") == conn and "sent" in item]


class RawClient:
    """An ESL client over a gevent socket.  Replies (command/reply, api/response) and
    everything else are kept apart: ``reply()`` returns the next reply, ``events`` grows
    as events arrive, ``wire`` keeps every byte received."""

    def __init__(self, port: int, host: str = "127.0.0.1") -> None:
        self.sock = socket.create_connection((host, port), timeout=5)
        self.reader = MessageReader()
        self.replies: Queue = Queue()
        self.messages: list[Message] = []
        self.events: list[CapturedEvent] = []
        self.wire = bytearray()
        self.eof = GEvent()
        self.changed = GEvent()
        self.greenlet = gevent.spawn(self._read)

    def _read(self) -> None:
        while True:
            try:
                data = self.sock.recv(65536)
            except OSError:
                data = b""
            if not data:
                self.eof.set()
                self._poke()
                return
            self.wire += data
            for message in self.reader.feed(data):
                self.messages.append(message)
                if message.content_type.startswith("text/event"):
                    self.events.append(CapturedEvent(message))
                else:
                    self.replies.put(message)
                self._poke()

    def _poke(self) -> None:
        changed, self.changed = self.changed, GEvent()
        changed.set()

    def send_raw(self, data: bytes) -> None:
        self.sock.sendall(data)

    def send(self, line: str, headers: dict | None = None, body: str | None = None) -> None:
        self.sock.sendall(encode_command(line, headers, body))

    def reply(self, timeout: float = 5.0) -> Message:
        try:
            return self.replies.get(timeout=timeout)
        except Empty:
            raise TimeoutError("no reply") from None

    def command(self, line: str, headers: dict | None = None, body: str | None = None,
                timeout: float = 10.0) -> Message:
        self.send(line, headers, body)
        return self.reply(timeout)

    def api(self, line: str, timeout: float = 10.0) -> str:
        return self.command("api " + line, timeout=timeout).text

    def auth(self, password: str = "ClueCon") -> None:
        first = self.reply()
        assert first.content_type == "auth/request"
        assert self.command(f"auth {password}").reply_text == "+OK accepted"

    def wait_for(self, predicate, timeout: float = 5.0):
        deadline = gevent.get_hub().loop.now() + timeout
        while True:
            changed = self.changed
            value = predicate()
            if value:
                return value
            remaining = deadline - gevent.get_hub().loop.now()
            if remaining <= 0:
                raise TimeoutError("condition not met")
            changed.wait(remaining)

    def wait_event(self, name: str, uuid: str | None = None, count: int = 1, timeout: float = 5.0,
                   **headers) -> CapturedEvent:
        def match():
            found = [e for e in self.events if e.name == name and (uuid is None or e.uuid == uuid)
                     and all(e.get(k.replace("_", "-")) == v for k, v in headers.items())]
            return found[count - 1] if len(found) >= count else None
        return self.wait_for(match, timeout)

    def close(self) -> None:
        try:
            self.sock.close()
        except OSError:
            pass
        self.greenlet.kill(block=False)


def channel_events(events: list[CapturedEvent], uuid: str, skip=("API", "HEARTBEAT", "RE_SCHEDULE")):
    return [e for e in events if e.uuid == uuid and e.name not in skip]


def compare_headers(expected: CapturedEvent, got: CapturedEvent, excluded) -> list[str]:
    """Header names (in order, duplicates kept) of two events of the same type, minus the
    documented exclusions; returns human-readable differences."""
    def keep(names):
        return [n for n in names if not excluded(n)]
    want, have = keep(expected.header_names), keep(got.header_names)
    if want == have:
        return []
    problems = []
    missing = [n for n in want if n not in have]
    extra = [n for n in have if n not in want]
    if missing:
        problems.append(f"{expected.label()}: missing {missing}")
    if extra:
        problems.append(f"{expected.label()}: unexpected {extra}")
    if not missing and not extra:
        common = [n for n in want if n in have]
        mine = [n for n in have if n in want]
        for i, (a, b) in enumerate(zip(common, mine)):
            if a != b:
                problems.append(f"{expected.label()}: order differs at {i}: want {a!r} got {b!r}: "
                                f"want {common[max(0, i - 2):i + 4]} got {mine[max(0, i - 2):i + 4]}")
                break
    return problems

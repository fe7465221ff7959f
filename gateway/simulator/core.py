"""The switch core: identity, the global event sequence, and event delivery.

Every event starts with the block FreeSWITCH's ``switch_event_prep_for_delivery_detailed``
writes (research/freeswitch.md §1.3): ``Event-Name, Core-UUID, FreeSWITCH-Hostname,
FreeSWITCH-Switchname, FreeSWITCH-IPv4, FreeSWITCH-IPv6, Event-Date-Local, Event-Date-GMT,
Event-Date-Timestamp, Event-Calling-File, Event-Calling-Function, Event-Calling-Line-Number,
Event-Sequence``.  ``fire()`` numbers every event, then builds and delivers it only when a
listener subscribed to its name, so unwatched events cost almost nothing.
"""

from __future__ import annotations

import time
import uuid as uuidlib
from typing import Callable, Iterable

from gateway.esl.protocol import Headers, encode_json_event, encode_plain_event, frame_event, url_encode

FS_VERSION = "1.10.12-release+git~20240802T210227Z~a88d069d6f~64bit"
FS_VERSION_LONG = "1.10.12-release git a88d069 2024-08-02 21:02:27Z 64bit"

Calling = tuple[str, str, int]


def now_us() -> int:
    return int(time.time() * 1_000_000)


def atoi(text: str) -> int:
    """C's ``atoi``: an optional sign and the leading digits; 0 when there are none."""
    text = text.lstrip()
    sign = -1 if text[:1] == "-" else 1
    digits = ""
    for ch in text[1:] if text[:1] in "+-" else text:
        if not ch.isdigit():
            break
        digits += ch
    return sign * int(digits) if digits else 0


def date_local(us: int) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(us // 1_000_000))


def date_gmt(us: int) -> str:
    return time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime(us // 1_000_000))


class Event:
    """One fired event: ordered headers (duplicates allowed), optional body, and the
    framed bytes per format, encoded once however many listeners receive it.

    Headers may be given as *segments*: ``[(headers, cache), …]`` where ``cache`` is
    ``None`` or ``(store, key)``; a segment whose key is unchanged since the last event of
    that channel (the caller profile, the channel variables) reuses its encoded bytes.
    Each segment is encoded with the protocol module's own encoders, so the bytes are the
    same as encoding the whole list at once."""

    __slots__ = ("name", "subclass", "_headers", "segments", "body", "unique_id", "job_owner", "_framed")

    def __init__(self, name: str, headers: Headers | None = None, body: str | None = None, subclass: str | None = None,
                 unique_id: str | None = None, job_owner: str | None = None, segments=None) -> None:
        self.name = name
        self.subclass = subclass
        self._headers = headers
        self.segments = segments
        self.body = body
        self.unique_id = unique_id
        self.job_owner = job_owner
        self._framed: dict[str, bytes] = {}

    @property
    def headers(self) -> Headers:
        if self._headers is None:
            self._headers = [h for part, _ in self.segments for h in part]
        return self._headers

    def get(self, name: str) -> str | None:
        """First header of that name, case-insensitive like ``switch_event_get_header``."""
        wanted = name.lower()
        for key, value in self.headers:
            if key.lower() == wanted:
                return value
        return None

    def framed(self, fmt: str) -> bytes:
        data = self._framed.get(fmt)
        if data is None:
            if fmt == "xml":
                payload = _encode_xml(self.headers, self.body)
            elif self.segments is None:
                payload = (encode_json_event if fmt == "json" else encode_plain_event)(self.headers, self.body)
            elif fmt == "json":
                parts = [p for p in (_segment(seg, "json") for seg in self.segments) if p]
                if self.body is not None:
                    parts.append(encode_json_event([], self.body)[1:-1])
                payload = b"{" + b",".join(parts) + b"}"
            else:
                parts = [_segment(seg, "plain") for seg in self.segments]
                parts.append(encode_plain_event([], self.body))
                payload = b"".join(parts)
            data = self._framed[fmt] = frame_event(payload, fmt)
        return data


_LINES: dict[str, dict[tuple[str, str], bytes]] = {"plain": {}, "json": {}}
_LINES_MAX = 200_000


def _segment(segment, fmt: str) -> bytes:
    """Encode one segment.  Cacheable segments (caller profile, channel variables: the
    same pairs recur in every event of a call, and across calls) are encoded line by line
    from a memo of (name, value) -> bytes; misses are encoded in one call of the protocol
    module's encoder and split back into lines (an encoded plain value never holds a raw
    LF)."""
    headers, cacheable = segment
    if not cacheable:
        if fmt == "json":
            return encode_json_event(headers)[1:-1]
        return encode_plain_event(headers)[:-1]
    store = _LINES[fmt]
    misses = [pair for pair in headers if pair[1] != "" and pair not in store]
    if misses:
        if len(store) > _LINES_MAX:
            store.clear()
        if fmt == "json":
            for pair in misses:
                store[pair] = encode_json_event([pair])[1:-1]
        else:
            lines = encode_plain_event(misses)[:-1].split(b"\n")
            for pair, line in zip(misses, lines):
                store[pair] = line + b"\n"
    if fmt == "json":
        return b",".join(store[pair] for pair in headers if pair[1] != "")
    return b"".join([store[pair] for pair in headers if pair[1] != ""])


def _encode_xml(headers: Headers, body: str | None) -> bytes:
    """``switch_event_xmlize``: url-encoded values under <headers>, body after."""
    parts = ["<event>\n  <headers>\n"]
    for name, value in headers:
        if value != "":
            parts.append(f"    <{name}>{url_encode(value)}</{name}>\n")
    parts.append("  </headers>\n")
    if body is not None:
        data = body.encode("utf-8")
        parts.append(f"  <Content-Length>{len(data)}</Content-Length>\n  <body>{body}</body>\n")
    parts.append("</event>")
    return "".join(parts).encode("utf-8")


class Core:
    """Identity of one running "FreeSWITCH" (a new Core-UUID on each start) and the
    event bus every listener hangs off."""

    def __init__(self, hostname: str, ipv4: str = "127.0.0.1", ipv6: str = "::1") -> None:
        self.uuid = str(uuidlib.uuid4())
        self.hostname = hostname
        self.ipv4 = ipv4
        self.ipv6 = ipv6
        self.sequence = 0
        self.started_us = now_us()
        self.listeners: list = []
        self.observers: list[Callable[[str, str | None], None]] = []

    def common(self, name: str, calling: Calling, us: int, seq: int) -> Headers:
        return [
            ("Event-Name", name), ("Core-UUID", self.uuid), ("FreeSWITCH-Hostname", self.hostname),
            ("FreeSWITCH-Switchname", self.hostname), ("FreeSWITCH-IPv4", self.ipv4),
            ("FreeSWITCH-IPv6", self.ipv6), ("Event-Date-Local", date_local(us)),
            ("Event-Date-GMT", date_gmt(us)), ("Event-Date-Timestamp", str(us)),
            ("Event-Calling-File", calling[0]), ("Event-Calling-Function", calling[1]),
            ("Event-Calling-Line-Number", str(calling[2])), ("Event-Sequence", str(seq)),
        ]

    def next_sequence(self) -> int:
        self.sequence += 1
        return self.sequence

    def fire(self, name: str, calling: Calling, build: Callable[[], Headers] | None = None, *,
             prefix: Iterable[tuple[str, str]] = (), subclass: str | None = None, unique_id: str | None = None,
             job_owner: str | None = None, body: str | None = None) -> Event | None:
        """Number the event and deliver it to every listener that wants it.

        ``prefix`` goes before the common block (CUSTOM's Event-Subclass, a private
        command's own headers); ``build`` returns the headers after it and is only
        called when someone listens."""
        seq = self.next_sequence()
        wanting = [lst for lst in self.listeners if lst.wants(name, subclass)]
        event = None
        if wanting:
            us = now_us()
            head = list(prefix) + self.common(name, calling, us, seq)
            built = build() if build is not None else []
            if built and isinstance(built[0], list):  # segments
                built[0] = head + built[0]
                segments = [(part, None) if i == 0 else part for i, part in enumerate(built)]
                event = Event(name, None, body, subclass, unique_id, job_owner, segments=segments)
            else:
                event = Event(name, head + built, body, subclass, unique_id, job_owner)
            for listener in wanting:
                listener.deliver(event)
        for observer in self.observers:
            observer(name, unique_id)
        return event

    def build_headers(self, name: str, calling: Calling, build: Callable[[], Headers] | None = None) -> Headers:
        """A full header list outside the bus (``uuid_dump``-style replies)."""
        headers = self.common(name, calling, now_us(), self.next_sequence())
        if build is not None:
            headers += build()
        return headers

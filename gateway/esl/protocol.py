"""The FreeSWITCH Event Socket wire protocol, without any IO.

Both directions live here so the controller and the simulator share one definition:

* ``MessageReader`` turns the bytes FreeSWITCH writes into ``Message`` objects (outer
  headers + exact ``Content-Length`` body), whatever the chunking;
* ``Event`` reads a ``text/event-plain`` or ``text/event-json`` body.  Plain events are
  parsed lazily: the few headers a controller routes on are found with ``bytes.find`` in
  the header block, and the full dict is only built when asked for.  Values are split on
  lines *before* they are URL-decoded, so an encoded ``%0A`` in a caller-ID name stays
  inside its value and cannot forge a header, and the event body (after the inner
  ``Content-Length``) stays a body;
* ``CommandReader`` is the server side: it splits what a client sends into ``Command``
  objects the way mod_event_socket does (LF or CRLF, leading blank lines skipped,
  optional ``Content-Length`` body);
* the ``frame_*`` and ``encode_*`` functions write FreeSWITCH's exact bytes, including its
  URL-encoding rule, header order and ``Content-Length`` placement.

Facts come from mod_event_socket.c and switch_event.c (see research/freeswitch.md, §1).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from urllib.parse import unquote

from gateway import peer_json

MAX_CONTENT_LENGTH = 16 * 1024 * 1024  # mod_event_socket's cap; larger is a broken peer
MAX_HEADER_BLOCK = 64 * 1024

Headers = list[tuple[str, str]]

DISCONNECT_GOODBYE = "Disconnected, goodbye.\nSee you at ClueCon! http://www.cluecon.com/\n"


class ProtocolError(Exception):
    """The peer sent bytes that are not the Event Socket protocol."""


@dataclass(slots=True)
class Message:
    """One framed message: its outer headers (raw, not URL-decoded) and its body."""

    headers: dict[str, str]
    body: bytes = b""

    @property
    def content_type(self) -> str:
        return self.headers.get("Content-Type", "")

    @property
    def reply_text(self) -> str:
        return self.headers.get("Reply-Text", "")

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")


def _content_length(text: str) -> int:
    """A Content-Length value, within mod_event_socket's bounds, or ``ProtocolError``.

    Decimal ASCII digits only: ``int`` would also take ``+5``, ``1_0`` and non-ASCII
    digits, none of which FreeSWITCH writes (mod_event_socket.c and switch_event.c print
    every length with ``%d`` / ``SWITCH_SSIZE_T_FMT``)."""
    digits = text.strip()
    if not (digits.isascii() and digits.isdigit()):
        raise ProtocolError(f"bad Content-Length {text[:40]!r}")
    size = int(digits)
    if size > MAX_CONTENT_LENGTH:
        raise ProtocolError(f"Content-Length out of range: {size}")
    return size


def _parse_block(block: bytes) -> dict[str, str]:
    headers: dict[str, str] = {}
    for line in block.decode("utf-8", "replace").split("\n"):
        if not line:
            continue
        name, sep, value = line.partition(":")
        if not sep:
            raise ProtocolError(f"header line without a colon: {line[:80]!r}")
        headers.setdefault(name.strip(), value.lstrip(" ").rstrip("\r"))
    return headers


class MessageReader:
    """Frames the server-to-client byte stream into ``Message`` objects.

    ``feed(data)`` buffers and returns every message now complete; bytes of an
    incomplete message stay buffered for the next call.
    """

    __slots__ = ("_buf", "_pending")

    def __init__(self) -> None:
        self._buf = b""
        self._pending: tuple[dict[str, str], int] | None = None

    def feed(self, data: bytes) -> list[Message]:
        buf = self._buf + data if self._buf else data
        out: list[Message] = []
        pos = 0
        end = len(buf)
        pending = self._pending
        while True:
            if pending is None:
                # FreeSWITCH never sends a blank line between messages, but tolerate one.
                while pos < end and buf[pos] == 10:
                    pos += 1
                split = buf.find(b"\n\n", pos)
                # The same limit whether the block arrives whole or in pieces: a piece
                # can hold at most the block and its first newline.
                if (end if split < 0 else split + 1) - pos > MAX_HEADER_BLOCK:
                    raise ProtocolError("header block too large")
                if split < 0:
                    break
                if buf.startswith(b"Content-Length: ", pos):  # an event: the hot path
                    line_end = buf.find(b"\n", pos)
                    if (line_end < split and buf.startswith(b"Content-Type: ", line_end + 1)
                            and buf.find(b"\n", line_end + 1, split) < 0):
                        length = buf[pos + 16:line_end].decode("ascii", "replace")
                        headers = {"Content-Length": length,
                                   "Content-Type": buf[line_end + 15:split].decode("ascii", "replace")}
                    else:
                        headers = _parse_block(buf[pos:split])
                        length = headers.get("Content-Length")
                else:
                    headers = _parse_block(buf[pos:split])
                    length = headers.get("Content-Length")
                pos = split + 2
                if length is None:
                    out.append(Message(headers))
                    continue
                pending = (headers, _content_length(length))
            headers, size = pending
            if end - pos < size:
                break
            out.append(Message(headers, buf[pos:pos + size]))
            pos += size
            pending = None
        self._pending = pending
        self._buf = buf[pos:]
        return out


class Event:
    """A FreeSWITCH event body, ``text/event-plain`` or ``text/event-json``.

    ``get(name)`` finds one header (first occurrence, URL-decoded); ``headers`` builds
    the full ordered dict once; ``body`` is the event's own body (BACKGROUND_JOB
    output, a CUSTOM event's JSON), or ``None``.

    A malformed event (a JSON body that is not FreeSWITCH's flat object of strings, an
    inner ``Content-Length`` that is not a number) makes these accessors raise
    ``ProtocolError`` and nothing else. The outer framing already delimited the event,
    so the stream goes on: the consumer skips that one event.
    """

    __slots__ = ("raw", "is_json", "_headers", "_body", "_head_end")

    def __init__(self, raw: bytes, is_json: bool = False) -> None:
        self.raw = raw
        self.is_json = is_json
        self._headers: dict[str, str] | None = None
        self._body: str | None = None
        self._head_end = -1

    @classmethod
    def from_message(cls, message: Message) -> Event:
        return cls(message.body, message.content_type == "text/event-json")

    # -- lazy single-header access (the hot path) -------------------------------------
    def _header_end(self) -> int:
        if self._head_end < 0:
            end = self.raw.find(b"\n\n")
            self._head_end = len(self.raw) if end < 0 else end + 1
        return self._head_end

    def get(self, name: str, default: str | None = None) -> str | None:
        if self.is_json or self._headers is not None:
            return self.headers.get(name, default)
        raw = self.raw
        key = name.encode() + b": "
        if raw.startswith(key):
            start = len(key)
        else:
            at = raw.find(b"\n" + key)
            # a match past the blank line is inside the event's body, not a header
            if at < 0 or raw.find(b"\n\n", 0, at + 1) >= 0:
                return default
            start = at + 1 + len(key)
        stop = raw.find(b"\n", start)
        value = raw[start:stop].decode("utf-8", "replace")
        return unquote(value) if "%" in value else value

    @property
    def name(self) -> str:
        return self.get("Event-Name") or ""

    @property
    def subclass(self) -> str | None:
        return self.get("Event-Subclass")

    @property
    def unique_id(self) -> str | None:
        return self.get("Unique-ID")

    # -- full parse ---------------------------------------------------------------------
    @property
    def headers(self) -> dict[str, str]:
        if self._headers is None:
            self._parse()
        return self._headers  # type: ignore[return-value]

    @property
    def body(self) -> str | None:
        if self._headers is None:
            self._parse()
        return self._body

    def items(self) -> Headers:
        """Every header in wire order, duplicates kept (CHANNEL_HANGUP_COMPLETE repeats
        Hangup-Cause); the inner Content-Length is not a header."""
        if self.is_json:
            return list(self.headers.items())
        pairs = []
        for line in self.raw[:self._header_end()].decode("utf-8", "replace").split("\n"):
            if line:
                name, _, value = line.partition(": ")
                pairs.append((name, unquote(value) if "%" in value else value))
        return [pair for pair in pairs if pair[0] != "Content-Length"]

    def _parse(self) -> None:
        if self.is_json:
            self._parse_json()
            return
        raw = self.raw
        head_end = self._header_end()
        headers: dict[str, str] = {}
        for line in raw[:head_end].decode("utf-8", "replace").split("\n"):
            if not line:
                continue
            name, _, value = line.partition(": ")
            if name not in headers:
                headers[name] = unquote(value) if "%" in value else value
        body = None
        length = headers.pop("Content-Length", None)
        if length is not None:
            body_start = head_end + 1
            body = raw[body_start:body_start + _content_length(length)].decode("utf-8", "replace")
        self._headers = headers
        self._body = body

    def _parse_json(self) -> None:
        """switch_event_serialize_json: one flat object; every value a string, or an
        array of strings for a header FreeSWITCH holds as an array (research/freeswitch.md
        §1); ``_body`` the event's body. Anything else is not an event of FreeSWITCH's."""
        try:
            data = peer_json.loads(self.raw)
        except ValueError as exc:
            raise ProtocolError(f"bad JSON event: {exc}") from None
        if not isinstance(data, dict):
            raise ProtocolError("JSON event is not an object")
        body = data.pop("_body", None)
        if body is not None and not isinstance(body, str):
            raise ProtocolError("JSON event _body is not a string")
        data.pop("Content-Length", None)
        headers = {name: value for name, value in data.items() if type(value) is str}
        if len(headers) < len(data):  # array headers (or a fault): keep the wire order
            headers = {name: _json_header(name, value) for name, value in data.items()}
        self._headers = headers
        self._body = body

    def __repr__(self) -> str:
        return f"<Event {self.name} {self.subclass or ''} {self.unique_id or ''}>".replace("  ", " ")


def _json_header(name: str, value) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, list) and all(isinstance(item, str) for item in value):
        return "|".join(value)
    raise ProtocolError(f"JSON event header {name[:60]!r} is not a string")


# -- client -> server ------------------------------------------------------------------

@dataclass(slots=True)
class Command:
    """One command as mod_event_socket reads it: first line, headers, optional body."""

    line: str
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""

    def header(self, name: str, default: str | None = None) -> str | None:
        """Header lookup, case-insensitive like mod_event_socket."""
        wanted = name.lower()
        for key, value in self.headers.items():
            if key.lower() == wanted:
                return value
        return default


# The end of a command's header block: two LFs with only CRs between them (mod_event_socket
# ignores CRs while it counts the newlines that end a block).
_BLANK_LINE = re.compile(rb"\n\r*\n")


class CommandReader:
    """Splits the client-to-server byte stream into ``Command`` objects.

    A block that arrives in pieces is searched once: ``_scan`` is where the search for
    its end resumes (its last LF, which may begin the blank line), so a client writing a
    command byte by byte costs linear time, not quadratic."""

    __slots__ = ("_buf", "_pending", "_scan")

    def __init__(self) -> None:
        self._buf = b""
        self._pending: tuple[Command, int] | None = None
        self._scan = 0

    def feed(self, data: bytes) -> list[Command]:
        self._buf += data
        out: list[Command] = []
        while True:
            if self._pending is None:
                if not self._scan:  # a new command: leading blank lines are skipped
                    self._buf = self._buf.lstrip(b"\r\n")
                buf = self._buf
                end = _BLANK_LINE.search(buf, self._scan)
                if end is None:
                    if len(buf) > MAX_HEADER_BLOCK:
                        raise ProtocolError("command too large")
                    last_lf = buf.rfind(b"\n")
                    self._scan = last_lf if last_lf >= 0 else len(buf)
                    break
                block, self._buf, self._scan = buf[:end.end() - 1], buf[end.end():], 0
                lines = block.decode("utf-8", "replace").replace("\r", "").split("\n")
                command = Command(lines[0].strip())
                for line in lines[1:]:
                    name, sep, value = line.partition(":")
                    if sep:
                        command.headers[name.strip()] = value.lstrip(" ")
                length = command.header("Content-Length")
                if length is None:
                    out.append(command)
                    continue
                self._pending = (command, _content_length(length))
            command, size = self._pending
            if len(self._buf) < size:
                break
            command.body = self._buf[:size]
            self._buf = self._buf[size:]
            self._pending = None
            out.append(command)
        return out


def encode_command(line: str, headers: dict[str, str] | None = None, body: bytes | str | None = None) -> bytes:
    """Bytes for one client command (``api status``, ``sendmsg <uuid>`` + headers, …)."""
    if "\n" in line or "\r" in line:
        raise ValueError("a command line cannot contain a newline")
    parts = [line]
    if headers:
        for name, value in headers.items():
            text = str(value)
            if "\n" in text or "\r" in text or "\n" in name:
                raise ValueError(f"header {name!r} cannot contain a newline")
            parts.append(f"{name}: {text}")
    if body is not None:
        data = body.encode() if isinstance(body, str) else body
        parts.append(f"Content-Length: {len(data)}")
        return ("\n".join(parts) + "\n\n").encode() + data
    return ("\n".join(parts) + "\n\n").encode()


# -- server -> client ------------------------------------------------------------------

# switch_utils.h SWITCH_URL_UNSAFE; bytes < 0x20 and > 0x7E are always encoded.
_UNSAFE = set(b"\r\n #%&+:;<=>?@[\\]^`{|}\"")
# Maps each byte, seen as a latin-1 character, to what FreeSWITCH writes for it.
_ENCODE = {b: f"%{b:02X}" for b in range(256) if b < 0x20 or b > 0x7E or b in _UNSAFE}
_ALREADY_ENCODED = re.compile(r"(%[0-9A-F]{2})")


def url_encode(value: str) -> str:
    """FreeSWITCH's ``switch_url_encode``: uppercase hex, and a ``%`` already followed by
    two uppercase hex digits is left alone (FreeSWITCH does not double-encode)."""
    if not value.isascii():
        value = value.encode("utf-8").decode("latin-1")  # one character per byte
    if "%" not in value:
        return value.translate(_ENCODE)
    parts = _ALREADY_ENCODED.split(value)
    parts[::2] = [part.translate(_ENCODE) for part in parts[::2]]
    return "".join(parts)


def encode_plain_event(headers: Headers, body: str | None = None) -> bytes:
    """A ``text/event-plain`` body: URL-encoded values, then the event's own body."""
    lines = [f"{name}: {url_encode(value)}\n" for name, value in headers if value != ""]
    if body is not None:
        data = body.encode("utf-8")
        return ("".join(lines) + f"Content-Length: {len(data)}\n\n").encode("utf-8") + data
    return ("".join(lines) + "\n").encode("utf-8")


def encode_json_event(headers: Headers, body: str | None = None) -> bytes:
    """A ``text/event-json`` body: one flat object of strings, no trailing newline.

    Written pair by pair because cJSON keeps duplicate names (the second Hangup-Cause
    of CHANNEL_HANGUP_COMPLETE) and a dict cannot."""
    pairs = [(name, value) for name, value in headers if value != ""]
    if body is not None:
        pairs += [("Content-Length", str(len(body.encode("utf-8")))), ("_body", body)]
    dump = _JSON_STRING
    return ("{" + ",".join(f"{dump(name)}:{dump(value)}" for name, value in pairs) + "}").encode("utf-8")


_JSON_STRING = json.JSONEncoder(ensure_ascii=False).encode


def frame_event(payload: bytes, fmt: str = "plain") -> bytes:
    """Outer framing of an event: Content-Length comes first, then Content-Type."""
    return b"Content-Length: %d\nContent-Type: text/event-%s\n\n" % (len(payload), fmt.encode()) + payload


def frame_reply(reply_text: str, extra: Headers = ()) -> bytes:
    head = f"Content-Type: command/reply\nReply-Text: {reply_text}\n"
    head += "".join(f"{name}: {value}\n" for name, value in extra)
    return (head + "\n").encode("utf-8")


def frame_api_response(body: str) -> bytes:
    data = (body or "-ERR no reply\n").encode("utf-8")
    return b"Content-Type: api/response\nContent-Length: %d\n\n" % len(data) + data


def frame_auth_request() -> bytes:
    return b"Content-Type: auth/request\n\n"


def frame_disconnect_notice(text: str = DISCONNECT_GOODBYE) -> bytes:
    data = text.encode("utf-8")
    return b"Content-Type: text/disconnect-notice\nContent-Length: %d\n\n" % len(data) + data

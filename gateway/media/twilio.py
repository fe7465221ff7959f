"""The bot protocol: Twilio Media Streams, bidirectional, as an IO-free state machine.

``BotStream`` is one stream seen from the gateway (Twilio's side).  Its methods return
the JSON text to send; ``receive(text)`` turns what the bot sent into events.  No socket
here (wsproto/h11 style), so the exact bytes are unit-tested and the same object serves
every connector that speaks this protocol.

Wire facts (research/media-protocols.md §1, from Twilio's "Media Streams - WebSocket
Messages" page):

* order: ``connected`` -> ``start`` -> (``media`` | ``dtmf`` | ``mark``)* -> ``stop``;
* ``connected`` has neither ``sequenceNumber`` nor ``streamSid``; every other message has
  a ``sequenceNumber`` counting from "1", and ``streamSid``;
* ``sequenceNumber``, ``media.chunk`` and ``media.timestamp`` are *strings*;
  ``mediaFormat.sampleRate`` and ``channels`` are numbers; camelCase everywhere
  (pipecat tells Twilio from Exotel by ``start.streamSid`` + ``start.callSid``);
* ``start``/``stop`` carry ``accountSid`` (``AC`` + 32 hex) and ``callSid`` (``CA`` + 32
  hex), Twilio-shaped and stable (``account_sid``, ``call_sid``); the gateway's own ids
  go in ``customParameters`` (``call_uuid``, ``account_id``);
* ``media.timestamp`` is milliseconds from the start of the stream; we derive it from
  the audio's place in the stream (8 bytes of mu-law per ms), so it stays consistent
  with the payloads, and a frame dropped on the way (a bot too slow to read) leaves its
  20 ms gap, as Twilio's does;
* from the bot: ``media`` (any size of raw mu-law), ``mark`` (echoed when the audio
  before it has played, or at once when nothing is queued, or on ``clear``), ``clear``.

Peer input never raises: malformed or unknown messages come back as ``ProtocolIssue``
events, which the bridge logs and skips.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import secrets
import uuid
from dataclasses import dataclass, field

from gateway import peer_json

TRACK = "inbound"
MEDIA_FORMAT = {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1}
#: A bot's message is refused over this: 256 KiB of text is 24 s of audio in one
#: ``media`` (bots send 20 ms to a few seconds at a time), and parsing it stays well under
#: a millisecond, so one bot's message cannot hold up the other calls' audio.
MAX_MESSAGE_CHARS = 256 * 1024
MAX_MARK_NAME = 256  # characters: a mark is a label (a uuid, a counter), kept until its audio has played


def _dumps(obj: dict) -> str:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False)


def new_stream_sid() -> str:
    """``MZ`` + 32 hex digits, the shape of a Twilio Stream SID."""
    return "MZ" + secrets.token_hex(16)


def call_sid(call_uuid: str) -> str:
    """``CA`` + 32 hex digits, stable per call: the call's uuid itself when it is one (so
    the SID in a bot's logs is the FreeSWITCH uuid in the gateway's), else a digest of it."""
    try:
        return "CA" + uuid.UUID(call_uuid).hex
    except ValueError:
        return "CA" + hashlib.sha256(f"voicegw call {call_uuid}".encode()).hexdigest()[:32]


def account_sid(account_id: str | int) -> str:
    """``AC`` + 32 hex digits, stable per account (a digest of its id)."""
    return "AC" + hashlib.sha256(f"voicegw account {account_id}".encode()).hexdigest()[:32]


def json_object(text: str) -> "dict | ProtocolIssue":
    """A peer's JSON message as a dict, or the ``ProtocolIssue`` that makes it unusable;
    never raises (every connector parses its peer's text this way). Nesting is bounded
    (``gateway.peer_json``), so the dict is safe to walk and to show."""
    try:
        msg = peer_json.loads(text)
    except peer_json.TooDeep as exc:
        return ProtocolIssue(str(exc), text[:120])
    except ValueError:
        return ProtocolIssue("not JSON", text[:120])
    if not isinstance(msg, dict):
        return ProtocolIssue("not a JSON object", text[:120])
    return msg


# -- events from the bot ---------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class BotEvent:
    """Something the bot sent."""


@dataclass(frozen=True, slots=True)
class Media(BotEvent):
    payload: bytes  # raw mu-law 8 kHz


@dataclass(frozen=True, slots=True)
class Mark(BotEvent):
    name: str


@dataclass(frozen=True, slots=True)
class Clear(BotEvent):
    pass


@dataclass(frozen=True, slots=True)
class ProtocolIssue(BotEvent):
    """A message that was skipped (or passed with a warning); ``text`` is a prefix of it."""

    reason: str
    text: str = ""


@dataclass(frozen=True, slots=True)
class ProviderSession(BotEvent):
    """A native provider's id for this conversation (ElevenLabs conversation id, Vapi
    call id): its post-call report names the call by it."""

    provider: str
    session_id: str


@dataclass(frozen=True, slots=True)
class Transcript(BotEvent):
    """A line of the conversation (native connectors): role ``user`` or ``bot``."""

    role: str
    text: str


@dataclass(frozen=True, slots=True)
class TranscriptCorrection(BotEvent):
    """The bot's last line ``original`` was not heard whole (the caller cut in): the
    transcript keeps ``corrected``, what was played (ElevenLabs' ``agent_response_correction``)."""

    original: str
    corrected: str


@dataclass(frozen=True, slots=True)
class LogNote(BotEvent):
    """Something a connector did for the bot that belongs in the call's log (a tool call
    and its result); ``detail`` is the log entry, with its ``event``."""

    detail: dict


@dataclass(frozen=True, slots=True)
class Closed(BotEvent):
    """The bot's socket ended.  ``clean``: it closed on purpose (close frame 1000/1001)."""

    code: int
    reason: str = ""
    clean: bool = False


# -- the stream --------------------------------------------------------------------------------

@dataclass
class BotStream:
    """One Twilio-style media stream towards a bot."""

    stream_sid: str
    call_sid: str
    account_sid: str
    custom_parameters: dict = field(default_factory=dict)
    tracks: tuple[str, ...] = (TRACK,)
    sequence: int = 0  # last sequenceNumber used
    chunk: int = 0  # last media chunk number
    audio_bytes: int = 0  # mu-law bytes sent, for media.timestamp
    stopped: bool = False

    def __post_init__(self) -> None:
        self._sid_json = _dumps(self.stream_sid)

    def _next(self) -> str:
        self.sequence += 1
        return str(self.sequence)

    # -- gateway -> bot -----------------------------------------------------------------
    def connected(self) -> str:
        return _dumps({"event": "connected", "protocol": "Call", "version": "1.0.0"})

    def start(self) -> str:
        return _dumps({
            "event": "start", "sequenceNumber": self._next(),
            "start": {
                "accountSid": self.account_sid, "streamSid": self.stream_sid, "callSid": self.call_sid,
                "tracks": list(self.tracks), "mediaFormat": dict(MEDIA_FORMAT),
                "customParameters": {str(k): _param(v) for k, v in self.custom_parameters.items()},
            },
            "streamSid": self.stream_sid,
        })

    def media(self, ulaw: bytes, timestamp_ms: int | None = None) -> str:
        """One chunk of caller audio (20 ms = 160 bytes from the bridge).  Filled into a
        template, byte for byte what ``json.dumps`` gives (the test says so): this is the
        message sent 50 times a second per call, and the encoder was its largest cost."""
        self.chunk += 1
        if timestamp_ms is None:
            timestamp_ms = self.audio_bytes // 8
        self.audio_bytes += len(ulaw)
        return _MEDIA % (self._next(), self.chunk, timestamp_ms, base64.b64encode(ulaw).decode("ascii"),
                         self._sid_json)

    def dtmf(self, digit: str) -> str:
        return _dumps({"event": "dtmf", "streamSid": self.stream_sid, "sequenceNumber": self._next(),
                       "dtmf": {"track": "inbound_track", "digit": digit}})

    def mark(self, name: str) -> str:
        """The echo of a bot's mark: its audio has played (or was cleared)."""
        return _dumps({"event": "mark", "sequenceNumber": self._next(), "streamSid": self.stream_sid,
                       "mark": {"name": name}})

    def stop(self) -> str:
        self.stopped = True
        return _dumps({"event": "stop", "sequenceNumber": self._next(),
                       "stop": {"accountSid": self.account_sid, "callSid": self.call_sid},
                       "streamSid": self.stream_sid})

    # -- bot -> gateway -----------------------------------------------------------------
    def receive(self, text: str | bytes) -> list[BotEvent]:
        """Parse one message from the bot; never raises."""
        if isinstance(text, (bytes, bytearray)):
            # Twilio 31950: binary frames are not part of the protocol.
            return [ProtocolIssue("binary frame (the protocol is JSON text)", repr(bytes(text[:40]))[:120])]
        head = text[:120]
        if len(text) > MAX_MESSAGE_CHARS:
            return [ProtocolIssue(f"message of {len(text)} characters is over the {MAX_MESSAGE_CHARS} limit", head)]
        msg = json_object(text)
        if isinstance(msg, ProtocolIssue):
            return [msg]
        event = msg.get("event")
        sid = msg.get("streamSid")
        if sid is not None and sid != self.stream_sid:
            return [ProtocolIssue(f"wrong streamSid {_shown(sid)}", head)]  # Twilio 31951
        if event == "media":
            media = msg.get("media")
            payload = media.get("payload") if isinstance(media, dict) else None
            if not isinstance(payload, str):
                return [ProtocolIssue("media without media.payload", head)]
            try:
                audio = base64.b64decode(payload, validate=True)
            except (binascii.Error, ValueError):
                return [ProtocolIssue("media.payload is not base64", head)]
            events: list[BotEvent] = []
            if audio[:4] == b"RIFF":
                events.append(ProtocolIssue("media.payload has a WAV header; raw mu-law expected", head))
            if audio:
                events.append(Media(audio))
            return events
        if event == "mark":
            mark = msg.get("mark")
            name = mark.get("name") if isinstance(mark, dict) else None
            if not isinstance(name, str):
                return [ProtocolIssue("mark without mark.name", head)]
            if len(name) > MAX_MARK_NAME:
                return [ProtocolIssue(f"mark name of {len(name)} characters is over the {MAX_MARK_NAME} limit",
                                      head)]
            return [Mark(name)]
        if event == "clear":
            return [Clear()]
        if event is None:
            return [ProtocolIssue("message without an event", head)]
        return [ProtocolIssue(f"unknown event {_shown(event)}", head)]


_MEDIA = ('{"event":"media","sequenceNumber":"%s","media":{"track":"' + TRACK
          + '","chunk":"%d","timestamp":"%d","payload":"%s"},"streamSid":%s}')


def _shown(value) -> str:
    """A peer's value for a log line: its repr, cut short (it may be megabytes long)."""
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _param(value) -> str:
    """Twilio's custom parameters are strings; other JSON values are sent as JSON text."""
    return value if isinstance(value, str) else json.dumps(value, separators=(",", ":"), ensure_ascii=False)

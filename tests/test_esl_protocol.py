"""The IO-free ESL core against real FreeSWITCH bytes (research/esl-samples, fs-captures)."""

import json
from pathlib import Path

import pytest

from gateway.esl.protocol import (
    CommandReader,
    Event,
    MessageReader,
    ProtocolError,
    encode_command,
    encode_json_event,
    encode_plain_event,
    frame_event,
    url_encode,
)

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "research"
SAMPLES = SHARED / "esl-samples"
CAPTURES = SHARED / "fs-captures"
WIRE_MARK = b"===== events (verbatim wire bytes) =====\n"

needs_shared = pytest.mark.skipif(not SHARED.is_dir(), reason="../shared/research is not checked out beside the repo")


def read_three_ways(data: bytes):
    """Whole, one byte at a time, and whole plus the start of a next message."""
    whole = MessageReader().feed(data)
    reader = MessageReader()
    single = [m for i in range(len(data)) for m in reader.feed(data[i:i + 1])]
    trailing_reader = MessageReader()
    trailing = trailing_reader.feed(data + b"Content-Length: 10\nContent-Type: text/event-plain\n\nabc")
    assert trailing_reader._buf == b"abc" and trailing_reader._pending is not None
    return whole, single, trailing


def wire_sample(name: str) -> bytes:
    """A sample file; the 'test' kind lost the trailing newlines of its last message
    (research/esl-samples/README.md): restore them."""
    data = (SAMPLES / name).read_bytes()
    reader = MessageReader()
    reader.feed(data)
    if reader._pending is not None:
        data += b"\n" * (reader._pending[1] - len(reader._buf))
    elif reader._buf:
        data += b"\n\n"
    return data


@needs_shared
@pytest.mark.parametrize("name", sorted(p.name for p in SAMPLES.glob("*.esl")) if SAMPLES.is_dir() else [])
def test_every_sample_frames_the_same_whole_bytewise_and_with_trailing_bytes(name):
    data = wire_sample(name)
    whole, single, trailing = read_three_ways(data)
    assert whole, "no message read"
    assert [(m.headers, m.body) for m in single] == [(m.headers, m.body) for m in whole]
    assert [(m.headers, m.body) for m in trailing] == [(m.headers, m.body) for m in whole]
    for message in whole:
        assert "Content-Type" in message.headers
        if "Content-Length" in message.headers:
            assert len(message.body) == int(message.headers["Content-Length"])


@needs_shared
def test_background_job_body_stays_a_body():
    (message,) = MessageReader().feed(wire_sample("neventsocket-background-job.esl"))
    event = Event.from_message(message)
    assert event.name == "BACKGROUND_JOB"
    assert event.get("Job-UUID") == "7f4db78a-17d7-11dd-b7a0-db4edd065621"
    assert event.body == "+OK 7f4de4bc-17d7-11dd-b7a0-db4edd065621\n"
    assert "Content-Length" not in event.headers
    assert event.headers["Job-Command-Arg"] == "sofia/default/1005 '&park'"


@needs_shared
def test_outbound_session_sample_events_and_dtmf():
    messages = MessageReader().feed(wire_sample("neventsocket-outbound-session-4.esl"))
    events = [Event.from_message(m) for m in messages if m.content_type == "text/event-plain"]
    digits = [e.get("DTMF-Digit") for e in events if e.name == "DTMF"]
    assert digits and all(len(d) == 1 for d in digits)
    assert messages[0].content_type == "command/reply"


@needs_shared
@pytest.mark.parametrize("name", ["cgrates-channel-hangup-complete-2015.plain", "cgrates-channel-hangup-complete-2018.plain"])
def test_hangup_complete_bodies(name):
    event = Event((SAMPLES / name).read_bytes() + b"\n\n")
    assert event.name == "CHANNEL_HANGUP_COMPLETE"
    causes = [v for k, v in event.items() if k == "Hangup-Cause"]
    assert len(causes) == 2 and causes[0] == event.get("Hangup-Cause")
    assert int(event.get("variable_billsec")) <= int(event.get("variable_duration"))


@needs_shared
def test_custom_mod_audio_stream_event_keeps_its_json_body():
    event = Event((SAMPLES / "genesis-mod-audio-stream-play.plain").read_bytes())
    assert event.name == "CUSTOM"
    assert event.subclass == "mod_audio_stream::play"
    assert json.loads(event.body)["file"].endswith(".tmp.r16")


def test_encoded_newline_in_caller_name_cannot_inject_a_header():
    headers = [("Event-Name", "CHANNEL_CREATE"), ("Caller-Caller-ID-Name", "Tom\nHangup-Cause: USER_BUSY"),
               ("Unique-ID", "u-1")]
    raw = encode_plain_event(headers)
    assert b"Tom%0AHangup-Cause%3A%20USER_BUSY" in raw
    event = Event(raw)
    assert event.get("Hangup-Cause") is None
    assert "Hangup-Cause" not in event.headers
    assert event.get("Caller-Caller-ID-Name") == "Tom\nHangup-Cause: USER_BUSY"
    assert event.unique_id == "u-1"


def test_body_text_that_looks_like_a_header_is_not_one():
    raw = encode_plain_event([("Event-Name", "CUSTOM"), ("Event-Subclass", "x::y")], body='Unique-ID: forged\n\n{"a": "50%25"}')
    event = Event(raw)
    assert event.get("Unique-ID") is None
    assert event.body == 'Unique-ID: forged\n\n{"a": "50%25"}'


def test_url_encoding_matches_freeswitch():
    assert url_encode("2026-11-21 22:33:18") == "2026-11-21%2022%3A33%3A18"
    assert url_encode("tone_stream://%(100,0,440)") == "tone_stream%3A//%25(100,0,440)"
    assert url_encode("a%0Ab") == "a%0Ab"  # an already-encoded sequence is not encoded again
    assert url_encode("a%0ab") == "a%250ab"  # lowercase hex is not FreeSWITCH's: encoded
    assert url_encode("mod_audio_stream::json") == "mod_audio_stream%3A%3Ajson"
    assert url_encode("é") == "%C3%A9"


def test_json_event_keeps_duplicates_and_body():
    raw = encode_json_event([("Event-Name", "BACKGROUND_JOB"), ("Job-UUID", "j")], "+OK x\n")
    event = Event(raw, is_json=True)
    assert event.name == "BACKGROUND_JOB" and event.body == "+OK x\n"
    assert json.loads(raw)["Content-Length"] == "6"


def _capture_events(path: Path):
    data = path.read_bytes().split(WIRE_MARK, 1)[1]
    reader = MessageReader()
    messages = reader.feed(data)
    assert reader._buf == b"" and reader._pending is None
    return [m for m in messages if m.content_type.startswith("text/event-")]


@needs_shared
@pytest.mark.parametrize("path", sorted(CAPTURES.glob("*.plain.wire")) if CAPTURES.is_dir() else [], ids=lambda p: p.name)
def test_plain_capture_events_reencode_byte_exact(path):
    for message in _capture_events(path):
        event = Event.from_message(message)
        assert encode_plain_event(event.items(), event.body) == message.body
        assert frame_event(message.body) == b"Content-Length: %d\nContent-Type: text/event-plain\n\n" % len(message.body) + message.body


@needs_shared
@pytest.mark.parametrize("path", sorted(CAPTURES.glob("*.json.wire")) if CAPTURES.is_dir() else [], ids=lambda p: p.name)
def test_json_capture_events_reencode_byte_exact(path):
    for message in _capture_events(path):
        pairs = json.loads(message.body, object_pairs_hook=list)
        if any(isinstance(v, list) for _, v in pairs):
            continue
        body = next((v for k, v in pairs if k == "_body"), None)
        headers = [(k, v) for k, v in pairs if k not in ("_body", "Content-Length")]
        assert encode_json_event(headers, body) == message.body
        event = Event.from_message(message)
        assert event.name == dict(headers)["Event-Name"]


def test_message_reader_rejects_garbage():
    with pytest.raises(ProtocolError):
        MessageReader().feed(b"this is not esl\n\n")
    with pytest.raises(ProtocolError):
        MessageReader().feed(b"Content-Type: api/response\nContent-Length: -4\n\n")
    with pytest.raises(ProtocolError):
        MessageReader().feed(b"Content-Type: x\n" + b"A: b\n" * 20000)


def test_command_reader_crlf_leading_blank_lines_and_bodies():
    data = b"\r\n\r\nauth ClueCon\r\n\r\nsendmsg abc\ncall-command: execute\nexecute-app-name: set\n" \
           b"content-type: text/plain\ncontent-length: 5\n\na=b\nc" + b"api status\n\n"
    for chunks in ([data], [data[i:i + 1] for i in range(len(data))]):
        reader = CommandReader()
        commands = [c for chunk in chunks for c in reader.feed(chunk)]
        assert [c.line for c in commands] == ["auth ClueCon", "sendmsg abc", "api status"]
        assert commands[1].header("Call-Command") == "execute"
        assert commands[1].body == b"a=b\nc"


def test_encode_command_refuses_newlines():
    assert encode_command("bgapi status", {"Job-UUID": "j"}) == b"bgapi status\nJob-UUID: j\n\n"
    with pytest.raises(ValueError):
        encode_command("api status\n\nexit")
    with pytest.raises(ValueError):
        encode_command("sendmsg x", {"execute-app-arg": "a\nb"})


def test_three_line_block_starting_with_content_length_is_parsed_fully():
    data = b"Content-Length: 2\nContent-Type: api/response\nX-Extra: 1\n\nok"
    (message,) = MessageReader().feed(data)
    assert message.headers == {"Content-Length": "2", "Content-Type": "api/response", "X-Extra": "1"}
    assert message.body == b"ok"

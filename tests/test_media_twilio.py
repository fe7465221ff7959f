"""The bot protocol (Twilio Media Streams) against research/media-protocols.md §1.2/§1.3:
the same keys, in the same order, with the same JSON types, as Twilio's examples."""

import base64
import json

import pytest

from gateway.media.twilio import BotStream, Clear, Mark, Media, ProtocolIssue, new_stream_sid

SID, CALL, ACCOUNT = "MZ0123", "CA4567", "AC89"

# Twilio's examples (media-protocols.md §1.2), with our ids in place of the "…".
CONNECTED = '{ "event": "connected", "protocol": "Call", "version": "1.0.0" }'
START = """{ "event": "start", "sequenceNumber": "1",
  "start": { "accountSid": "AC89", "streamSid": "MZ0123", "callSid": "CA4567",
             "tracks": ["inbound"],
             "mediaFormat": { "encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1 },
             "customParameters": { "FirstName": "Jane", "LastName": "Doe", "RemoteParty": "Bob" } },
  "streamSid": "MZ0123" }"""
MEDIA = """{ "event": "media", "sequenceNumber": "2",
  "media": { "track": "inbound", "chunk": "1", "timestamp": "0", "payload": "/w==" },
  "streamSid": "MZ0123" }"""
DTMF = '{ "event": "dtmf", "streamSid": "MZ0123", "sequenceNumber": "3", "dtmf": { "track": "inbound_track", "digit": "1" } }'
MARK = '{ "event": "mark", "sequenceNumber": "4", "streamSid": "MZ0123", "mark": { "name": "my label" } }'
STOP = """{ "event": "stop", "sequenceNumber": "5", "stop": { "accountSid": "AC89", "callSid": "CA4567" },
  "streamSid": "MZ0123" }"""


def compact(example: str) -> str:
    """The example re-serialised without spaces, keys kept in their order."""
    return json.dumps(json.loads(example), separators=(",", ":"))


def test_messages_are_byte_exact_twilio():
    stream = BotStream(SID, CALL, ACCOUNT, {"FirstName": "Jane", "LastName": "Doe", "RemoteParty": "Bob"})
    assert stream.connected() == compact(CONNECTED)
    assert stream.start() == compact(START)
    assert stream.media(b"\xff") == compact(MEDIA)
    assert stream.dtmf("1") == compact(DTMF)
    assert stream.mark("my label") == compact(MARK)
    assert stream.stop() == compact(STOP)


def test_media_counters_are_strings_and_timestamps_follow_the_audio():
    stream = BotStream(SID, CALL, ACCOUNT)
    stream.start()
    messages = [json.loads(stream.media(b"\xff" * 160)) for _ in range(3)]
    assert [m["sequenceNumber"] for m in messages] == ["2", "3", "4"]
    assert [m["media"]["chunk"] for m in messages] == ["1", "2", "3"]
    assert [m["media"]["timestamp"] for m in messages] == ["0", "20", "40"]
    assert base64.b64decode(messages[0]["media"]["payload"]) == b"\xff" * 160


def test_custom_parameters_are_strings():
    stream = BotStream(SID, CALL, ACCOUNT, {"n": 42, "flag": True, "nested": {"a": [1]}, "s": "é"})
    params = json.loads(stream.start())["start"]["customParameters"]
    assert params == {"n": "42", "flag": "true", "nested": '{"a":[1]}', "s": "é"}
    assert new_stream_sid().startswith("MZ") and len(new_stream_sid()) == 34


def test_receive_media_mark_clear_as_the_bot_sends_them():
    stream = BotStream(SID, CALL, ACCOUNT)
    payload = base64.b64encode(b"\x01\x02\x03").decode()
    assert stream.receive(json.dumps({"event": "media", "streamSid": SID, "media": {"payload": payload}})) == \
        [Media(b"\x01\x02\x03")]
    assert stream.receive('{"event":"mark","streamSid":"MZ0123","mark":{"name":"my label"}}') == [Mark("my label")]
    assert stream.receive('{"event":"clear","streamSid":"MZ0123"}') == [Clear()]
    # pipecat/vocode send streamSid; a bot that leaves it out is tolerated
    assert stream.receive('{"event":"clear"}') == [Clear()]


@pytest.mark.parametrize("text, reason", [
    ("not json", "not JSON"),
    ("[1]", "not a JSON object"),
    ('{"streamSid":"MZ0123"}', "message without an event"),
    ('{"event":"media","streamSid":"MZ0123"}', "media without media.payload"),
    ('{"event":"media","streamSid":"MZ0123","media":{"payload":7}}', "media without media.payload"),
    ('{"event":"media","streamSid":"MZ0123","media":{"payload":"@@"}}', "media.payload is not base64"),
    ('{"event":"mark","streamSid":"MZ0123","mark":{}}', "mark without mark.name"),
    ('{"event":"clear","streamSid":"MZother"}', "wrong streamSid 'MZother'"),
    ('{"event":"dance","streamSid":"MZ0123"}', "unknown event 'dance'"),
    (b"\x00\x01", "binary frame (the protocol is JSON text)"),
])
def test_malformed_input_is_an_issue_never_an_exception(text, reason):
    events = BotStream(SID, CALL, ACCOUNT).receive(text)
    assert len(events) == 1 and isinstance(events[0], ProtocolIssue) and events[0].reason == reason


def test_wav_payload_is_flagged_but_passed_through():
    wav = b"RIFF\x24\x00\x00\x00WAVEfmt "
    events = BotStream(SID, CALL, ACCOUNT).receive(json.dumps(
        {"event": "media", "streamSid": SID, "media": {"payload": base64.b64encode(wav).decode()}}))
    assert isinstance(events[0], ProtocolIssue) and events[1] == Media(wav)


def test_garbage_never_raises():
    stream = BotStream(SID, CALL, ACCOUNT)
    samples = ['{"event":null}', '{"event":"media","media":null}', '{"event":"mark","mark":"x"}', "{}", "",
               '{"event":"media","media":{"payload":""}}', "\ud800", '{"event":' * 50, "1e999", "null"]
    for text in samples:
        for event in stream.receive(text):
            assert isinstance(event, (ProtocolIssue, Media, Mark, Clear))
    huge = '{"event":"media","media":{"payload":"' + "A" * (5 * 1024 * 1024) + '"}}'
    assert isinstance(stream.receive(huge)[0], ProtocolIssue)

"""Fuzz the bot protocol parser (``gateway.media.twilio``) and the JSON-object reader
every bot connector shares (``json_object``, over ``gateway.peer_json``).

What must hold, whatever a bot sends: ``BotStream.receive`` never raises, returns
``BotEvent``s only, and a ``ProtocolIssue`` quotes at most 120 characters of the
message and says why in a short line. Each input is tried as the text of a frame as
the link decodes it (UTF-8, bad bytes replaced), as text with lone surrogates in it,
and as a binary frame.

Run: ``python fuzz/twilio.py -max_total_time=60`` (see ``fuzz/_harness.py``).
"""
import atheris

import _harness

with atheris.instrument_imports(include=["gateway.media.twilio", "gateway.peer_json"]):
    from gateway.media.twilio import BotEvent, BotStream, Mark, Media, ProtocolIssue, json_object

STREAM_SID = "MZ" + "0" * 32  # the seeds' streamSid


def _check(events) -> None:
    assert isinstance(events, list) and all(isinstance(event, BotEvent) for event in events), events
    for event in events:
        if isinstance(event, ProtocolIssue):
            assert len(event.text) <= 120 and len(event.reason) <= 200, event
        elif isinstance(event, Media):
            assert isinstance(event.payload, bytes) and event.payload
        elif isinstance(event, Mark):
            assert isinstance(event.name, str)


def test_one_input(data: bytes) -> None:
    for text in (data.decode("utf-8", "replace"), data.decode("utf-8", "surrogateescape")):
        stream = BotStream(STREAM_SID, "CA0", "AC0")
        events = stream.receive(text)
        _check(events)
        for event in events:
            if isinstance(event, Mark):
                stream.mark(event.name)  # the echo goes back out
        parsed = json_object(text)
        assert isinstance(parsed, (dict, ProtocolIssue)), parsed
    _check(BotStream(STREAM_SID, "CA0", "AC0").receive(data))


if __name__ == "__main__":
    _harness.run("twilio", test_one_input, dictionary="json.dict")

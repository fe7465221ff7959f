"""Fuzz the Event Socket core (``gateway.esl.protocol``) with what a peer could send.

What must hold, whatever the bytes:

* ``MessageReader`` (FreeSWITCH → us) and ``CommandReader`` (a client → the simulator)
  raise nothing but ``ProtocolError``, and only when the framing itself is lost;
* they frame the same messages whether the bytes arrive whole or in pieces (the first
  input byte picks the piece size; at most 64 pieces, to keep each run short), and
  fail on the same input;
* an ``Event`` (plain or JSON) raises nothing but ``ProtocolError`` from any accessor.

Seeds: events and replies of a real FreeSWITCH 1.10.12 (research/fs-captures).
Run: ``python fuzz/esl_protocol.py -max_total_time=60`` (see ``fuzz/_harness.py``).
"""
import atheris

import _harness

with atheris.instrument_imports(include=["gateway.esl", "gateway.peer_json"]):
    from gateway.esl.protocol import CommandReader, Event, MessageReader, ProtocolError


def _frame(data: bytes, piece: int) -> tuple[list, bool]:
    """The messages framed from ``data`` fed ``piece`` bytes at a time, and whether the
    reader gave up."""
    reader = MessageReader()
    messages = []
    try:
        for start in range(0, len(data), piece):
            messages.extend(reader.feed(data[start:start + piece]))
    except ProtocolError:
        return messages, True
    return messages, False


def _read_event(raw: bytes, is_json: bool) -> None:
    event = Event(raw, is_json)
    try:
        event.name, event.unique_id, event.subclass, event.get("Job-UUID"), repr(event)
        event.items()
        event.headers, event.body
    except ProtocolError:
        pass


def _commands(data: bytes, piece: int) -> None:
    reader = CommandReader()
    try:
        for start in range(0, len(data), piece):
            for command in reader.feed(data[start:start + piece]):
                command.header("content-length")
    except ProtocolError:
        pass


def test_one_input(data: bytes) -> None:
    if not data:
        return
    piece, data = max(data[0] % 61 + 1, len(data) // 64 + 1), data[1:]
    whole, whole_failed = _frame(data, max(len(data), 1))
    pieces, pieces_failed = _frame(data, piece)
    assert whole_failed == pieces_failed, (whole_failed, pieces_failed)
    if not whole_failed:
        assert [(m.headers, m.body) for m in whole] == [(m.headers, m.body) for m in pieces]
    for message in pieces:
        _read_event(message.body, False)
        _read_event(message.body, True)
    _commands(data, piece)


if __name__ == "__main__":
    _harness.run("esl", test_one_input)

"""How many events per second the ESL link ingests, next to greenswitch's own reader.

Both readers get the same bytes from memory (no socket), so the figure is the parsing
cost alone: realistic CHANNEL_* events of about 3.5 KB (~60 headers) and 12 KB (many
``variable_*``), framed exactly as FreeSWITCH frames them.  "Ingest" means what the
controller's reader does per event: frame it, read the headers it routes on
(Event-Name, Unique-ID) and enqueue it; greenswitch's reader frames, URL-decodes and
splits every header and enqueues.

    python bench/esl_throughput.py [--events 20000]
"""

from __future__ import annotations

import argparse
import io
import time
import uuid

from gevent.queue import Queue
from greenswitch.esl import ESLProtocol

from gateway.esl.protocol import Event, MessageReader, encode_plain_event, frame_event


def channel_event(n_variables: int, name: str = "CHANNEL_ANSWER") -> bytes:
    call = str(uuid.uuid4())
    headers = [
        ("Event-Name", name), ("Core-UUID", str(uuid.uuid4())), ("FreeSWITCH-Hostname", "fs1"),
        ("FreeSWITCH-Switchname", "fs1"), ("FreeSWITCH-IPv4", "10.0.0.5"), ("FreeSWITCH-IPv6", "::1"),
        ("Event-Date-Local", "2026-11-21 22:33:18"), ("Event-Date-GMT", "Sat, 21 Nov 2026 22:33:18 GMT"),
        ("Event-Date-Timestamp", "1795300398737487"), ("Event-Calling-File", "switch_channel.c"),
        ("Event-Calling-Function", "switch_channel_perform_mark_answered"),
        ("Event-Calling-Line-Number", "3959"), ("Event-Sequence", "4242"),
        ("Channel-State", "CS_CONSUME_MEDIA"), ("Channel-Call-State", "RINGING"), ("Channel-State-Number", "7"),
        ("Channel-Name", "sofia/gateway/carrier/+15551234567"), ("Unique-ID", call),
        ("Call-Direction", "outbound"), ("Presence-Call-Direction", "outbound"), ("Channel-HIT-Dialplan", "false"),
        ("Channel-Call-UUID", call), ("Answer-State", "answered"),
        ("Channel-Read-Codec-Name", "PCMU"), ("Channel-Read-Codec-Rate", "8000"),
        ("Channel-Read-Codec-Bit-Rate", "64000"), ("Channel-Write-Codec-Name", "PCMU"),
        ("Channel-Write-Codec-Rate", "8000"), ("Channel-Write-Codec-Bit-Rate", "64000"),
    ]
    for prefix in ("Caller-", "Other-Leg-"):
        headers += [
            (prefix + "Direction", "outbound"), (prefix + "Logical-Direction", "outbound"),
            (prefix + "Username", "gateway"), (prefix + "Dialplan", "XML"),
            (prefix + "Caller-ID-Name", "My Business"), (prefix + "Caller-ID-Number", "+15558880000"),
            (prefix + "Orig-Caller-ID-Name", "My Business"), (prefix + "Network-Addr", "203.0.113.7"),
            (prefix + "Destination-Number", "+15551234567"), (prefix + "Unique-ID", call),
            (prefix + "Source", "src/switch_ivr_originate.c"), (prefix + "Context", "default"),
            (prefix + "Channel-Name", "sofia/gateway/carrier/+15551234567"), (prefix + "Profile-Index", "1"),
            (prefix + "Profile-Created-Time", "1795300398737487"),
            (prefix + "Channel-Created-Time", "1795300398737487"),
            (prefix + "Channel-Answered-Time", "1795300399737487"),
        ]
    for i in range(n_variables):
        headers.append((f"variable_var_{i}", f"value {i}: with spaces, colons and % signs {'x' * (i % 40)}"))
    return frame_event(encode_plain_event(headers))


def stream(event_bytes: bytes, count: int) -> bytes:
    return event_bytes * count


def bench_ours(data: bytes, count: int) -> float:
    queue: Queue = Queue()
    reader = MessageReader()
    view = memoryview(data)
    start = time.perf_counter()
    for offset in range(0, len(data), 262144):
        for message in reader.feed(bytes(view[offset:offset + 262144])):
            event = Event.from_message(message)
            event.name, event.unique_id  # what the controller routes on
            queue.put_nowait(event)
    elapsed = time.perf_counter() - start
    assert len(queue) == count, len(queue)
    return count / elapsed


def bench_greenswitch(data: bytes, count: int) -> float:
    protocol = ESLProtocol()
    protocol.sock_file = io.BytesIO(data)
    protocol.sock = io.BytesIO()
    protocol.connected = True
    start = time.perf_counter()
    protocol.receive_events()  # reads until EOF, enqueueing every event
    elapsed = time.perf_counter() - start
    assert protocol._esl_event_queue.qsize() == count, protocol._esl_event_queue.qsize()
    return count / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=20000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    print(f"{'event':>10} {'bytes':>7} {'headers':>8} {'greenswitch ev/s':>17} {'ours ev/s':>11} {'ratio':>7}")
    for label, n_vars in (("3.5KB", 8), ("12KB", 120)):
        one = channel_event(n_vars)
        data = stream(one, args.events)
        headers = Event(one.split(b"\n\n", 1)[1]).items()
        baseline = max(bench_greenswitch(data, args.events) for _ in range(args.rounds))
        ours = max(bench_ours(data, args.events) for _ in range(args.rounds))
        print(f"{label:>10} {len(one):>7} {len(headers):>8} {baseline:>17,.0f} {ours:>11,.0f} {ours / baseline:>6.1f}x")


if __name__ == "__main__":
    main()

"""One bot cannot stall the other calls, and a bot's excess is refused with a log entry.

The bridge runs every call in one process: a bot that floods it (messages of megabytes,
tens of thousands of marks) must cost its own call, not the others' audio. The tests
check the order of events (the other call's audio moves while the flood is read); the
bench (bench/media_relay.py) has the figures in milliseconds.
"""

from __future__ import annotations

import base64
import json
import logging
import time
import uuid

import gevent
import pytest
import websocket
from wsproto.events import TextMessage

from gateway.media import bridge as bridge_module
from gateway.media.bridge import MediaBridge
from gateway.media.connectors.base import MAX_QUEUED_AUDIO, CallInfo
from gateway.media.connectors.websocket_bot import WebsocketBotLink
from gateway.media.twilio import MAX_MESSAGE_CHARS
from media_support import TwilioBot

FRAME = b"\x95" * 160  # 20 ms of mu-law, not silence
HUGE_MESSAGES = 5  # of 4 MB each (before the limits, one held the other calls up 0.16-0.43 s)
FLOOD_MARKS = 20000


class Owner:
    def __init__(self) -> None:
        self.logged: list[dict] = []

    def bot_closed(self, stream, link, event) -> None:
        pass

    def provider_session(self, stream, event) -> None:
        pass

    def fs_failed(self, stream, reason) -> None:
        pass

    def transcript(self, stream, role, text) -> None:
        pass

    def log(self, stream, detail) -> None:
        self.logged.append(detail)


class FakeFs:
    """mod_audio_stream's end of one call: metadata, a 320-byte L16 frame every 20 ms,
    and the arrival time of every binary frame the bridge sends back."""

    def __init__(self, url: str) -> None:
        self.ws = websocket.create_connection(url, timeout=5)
        self.ws.settimeout(None)
        self.ws.send(json.dumps({"call_uuid": "fairness"}))
        self.heard: list[float] = []
        self.on_heard = None  # fn(), called at each frame heard
        self._greenlets = [gevent.spawn(self._send_frames), gevent.spawn(self._read)]

    def _send_frames(self) -> None:
        start = time.monotonic()
        for n in range(100000):
            gevent.sleep(max(0.0, start + n * 0.02 - time.monotonic()))
            self.ws.send_binary(b"\x10\x00" * 160)

    def _read(self) -> None:
        while True:
            opcode, _ = self.ws.recv_data()
            if opcode == websocket.ABNF.OPCODE_BINARY:
                self.heard.append(time.monotonic())
                if self.on_heard:
                    self.on_heard()

    def stop(self) -> None:
        gevent.killall(self._greenlets)
        self.ws.shutdown()


def _count_marks(bot: TwilioBot) -> list[int]:
    """A counter of the mark echoes ``bot`` gets (its own list would be parsed again per message)."""
    counted = [0]

    def on_message(peer, kind, data) -> None:
        if kind == "text" and '"event":"mark"' in data:
            counted[0] += 1

    bot.on_message = on_message
    return counted


@pytest.fixture
def rig(loopback_allowed):
    bridge = MediaBridge("127.0.0.1", 0)
    bridge.start()
    made: list = []

    def call(bot: TwilioBot, owner: Owner | None = None):
        call_uuid = str(uuid.uuid4())
        stream = bridge.open(call_uuid, form="stream", owner=owner or Owner())
        stream.set_bot(WebsocketBotLink(bot.url(), CallInfo(call_uuid, "1")))
        fs = FakeFs(bridge.url_for(stream))
        made.append(fs)
        bot.wait_event("media", count=3)
        return stream, fs

    yield call
    for fs in made:
        fs.stop()
    bridge.stop()


def _media(sid: str, audio: bytes) -> str:
    return json.dumps({"event": "media", "streamSid": sid, "media": {"payload": base64.b64encode(audio).decode()}})


def test_a_flooding_bot_does_not_hold_up_another_call(rig):
    """While the bridge works through one bot's flood, another call's audio keeps moving
    both ways: frames of the quiet call are forwarded at many points *between* the
    flood's first and last message. That is an order of events, true on a loaded
    machine too; how long the holes are is the bench's figure (bench/media_relay.py)."""
    flooder, quiet = TwilioBot(), TwilioBot()
    try:
        flooding, _ = rig(flooder)
        _, quiet_fs = rig(quiet)
        sid, quiet_sid = flooder.stream_sid(), quiet.stream_sid()
        peer = flooder.peers[-1]
        # Built before it is sent: the test's own work must not be what is measured.
        huge = _media(sid, b"\x95" * (3 * 1024 * 1024 - 3072))  # just under 4 MiB of text
        flood = b"".join([peer.ws.send(TextMessage(data=huge))] * HUGE_MESSAGES)
        flood += b"".join(peer.ws.send(TextMessage(data=json.dumps(
            {"event": "mark", "streamSid": sid, "mark": {"name": f"m{i}"}}))) for i in range(FLOOD_MARKS))
        total = HUGE_MESSAGES + FLOOD_MARKS
        frame = _media(quiet_sid, FRAME)

        def progress() -> int:
            return sum(flooding.counters.get(k, 0) for k in ("bot_media", "bot_marks", "marks_refused", "issues"))

        to_caller, to_bot = [], []  # the flood's progress at each quiet frame, per direction
        quiet_fs.on_heard = lambda: to_caller.append(progress())
        quiet.on_message = lambda peer, kind, data: (
            to_bot.append(progress()) if kind == "text" and '"event":"media"' in data else None)

        def speak():  # the quiet call's bot talks in real time throughout
            start = time.monotonic()
            for n in range(100000):
                gevent.sleep(max(0.0, start + n * 0.02 - time.monotonic()))
                quiet.peers[-1].send_text(frame)

        talker = gevent.spawn(speak)
        try:
            quiet.wait_for(lambda: len(to_caller) >= 5, what="the quiet call's audio")
            peer.sock.sendall(flood)
            flooder.wait_for(lambda: progress() >= total, timeout=60, what="the flood read")
        finally:
            talker.kill()
        for direction, seen in (("bot -> caller", to_caller), ("caller -> bot", to_bot)):
            during = {p for p in seen if 0 < p < total}
            assert len(during) >= 20, f"{direction}: the quiet call moved at {sorted(during)} of {total} flood messages"
    finally:
        flooder.stop()
        quiet.stop()


def test_a_message_over_the_limit_is_skipped_with_a_log_entry(rig, caplog):
    bot, owner = TwilioBot(), Owner()
    try:
        stream, _ = rig(bot, owner)
        caplog.set_level(logging.WARNING)
        bot.peers[-1].send_text(_media(bot.stream_sid(), b"\x95" * MAX_MESSAGE_CHARS))
        bot.send_media(FRAME)
        bot.wait_for(lambda: stream.counters["issues"] and stream.counters["bot_media"], what="both messages")
        assert stream.counters["bot_media"] == 1
        skipped = [d for d in owner.logged if d["event"] == "bot_message_skipped"]
        assert skipped and f"over the {MAX_MESSAGE_CHARS} limit" in skipped[0]["reason"]
        assert any(f"over the {MAX_MESSAGE_CHARS} limit" in r.getMessage() for r in caplog.records)
    finally:
        bot.stop()


def test_marks_in_flight_are_bounded_with_a_log_entry(rig, caplog):
    bot, owner = TwilioBot(), Owner()
    limit = bridge_module.MAX_MARKS_IN_FLIGHT
    try:
        stream, _ = rig(bot, owner)
        echoes = _count_marks(bot)
        caplog.set_level(logging.WARNING)
        bot.send_media(b"\x95" * 80000)  # 10 s: the marks behind it wait for it
        for i in range(limit + 500):
            bot.send_mark(f"m{i}")
        bot.wait_for(lambda: stream.counters["bot_marks"] + stream.counters["marks_refused"] == limit + 500,
                     what="every mark handled")
        assert stream.counters["bot_marks"] == limit and stream.counters["marks_refused"] == 500
        assert stream.downlink.pending_marks == limit
        assert [d["limit"] for d in owner.logged if d["event"] == "bot_marks_over_limit"] == [limit]
        assert sum("marks waiting for their audio" in r.getMessage() for r in caplog.records) == 1
        bot.send_clear()  # every accepted mark comes back, in order
        bot.wait_for(lambda: echoes[0] >= limit, what="the echoes")
        assert [m["mark"]["name"] for m in bot.events(event="mark")] == [f"m{i}" for i in range(limit)]
    finally:
        bot.stop()


def test_frames_dropped_for_a_slow_bot_leave_their_gap_in_media_timestamp(loopback_allowed):
    bot = TwilioBot()
    link = WebsocketBotLink(bot.url(), CallInfo(str(uuid.uuid4()), "1"))
    try:
        extra = 30
        for _ in range(MAX_QUEUED_AUDIO + extra):  # queued before the link sends: the oldest go
            link.send_audio(FRAME)
        link.start(lambda event: None)
        media = bot.wait_event("media", count=MAX_QUEUED_AUDIO)
        assert link.dropped_audio == extra
        assert [int(m["media"]["timestamp"]) for m in media] == [20 * (extra + i) for i in range(MAX_QUEUED_AUDIO)]
        assert [m["media"]["chunk"] for m in media[:2]] == ["1", "2"]  # chunks count what was sent
    finally:
        link.kill()
        bot.stop()

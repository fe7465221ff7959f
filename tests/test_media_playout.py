"""The stream form's playout clock, IO-free, on a fake clock."""

import pytest

from gateway.media.playout import Playout, is_silent

FRAME = 160  # 20 ms of mu-law
SILENCE = 0xFF


def audio(ms: int, byte: int = 0x11) -> bytes:
    return bytes([byte]) * (ms * 8)


def run(playout: Playout, until: float, start: float = 0.0, step: float = 0.001):
    """Poll every ``step`` seconds; return [(time, audio, marks, start)] of the non-empty polls."""
    out = []
    t = start
    while t <= until + 1e-9:
        due = playout.poll(t)
        if due.audio or due.marks:
            out.append((round(t, 4), due.audio, due.marks, due.start))
        t = round(t + step, 6)
    return out


def exact() -> Playout:
    """No cushion, no mark delay: the clock's arithmetic alone."""
    return Playout(cushion=0.0, mark_delay=0.0)


def test_a_spurt_starts_once_the_cushion_is_queued_then_keeps_only_the_lead_handed():
    playout = Playout(lead=0.1, refill=0.04, cushion=0.02)
    playout.enqueue(audio(10), 0.0)  # half the cushion: wait
    assert playout.poll(0.0).audio == b""
    assert playout.next_wakeup() == pytest.approx(0.02)
    playout.enqueue(audio(990), 0.01)  # now a second in the queue: the lead goes at once
    first = playout.poll(0.01)
    assert len(first.audio) == 120 * 8 and first.start == pytest.approx(0.01)  # frames starting by now + lead
    # then a refill whenever 40 ms of the lead have played, without drift
    assert playout.next_wakeup() == pytest.approx(0.13 - 0.1 + 0.04)
    t, handed = playout.next_wakeup(), []
    while playout.queued_bytes:
        due = playout.poll(t + 0.0007)  # always 0.7 ms late
        handed.append((due.start, len(due.audio)))
        t = playout.next_wakeup()
    assert sum(n for _, n in handed) == 880 * 8
    assert handed[-1][0] + (handed[-1][1] - FRAME) / 8000 == pytest.approx(0.01 + 0.98, abs=1e-9)


def test_a_short_sound_waits_the_cushion_at_most():
    playout = Playout(cushion=0.02)
    playout.enqueue(audio(5), 1.0)
    assert playout.poll(1.019).audio == b""
    due = playout.poll(1.02)
    assert len(due.audio) == 40 and due.start == pytest.approx(1.02)


def test_a_real_time_bot_keeps_a_steady_latency():
    playout = Playout(cushion=0.02)
    starts = []
    for n in range(200):  # 4 s of frames, each polled the moment it arrives
        now = n * 0.02
        playout.enqueue(audio(20), now)
        due = playout.poll(now)
        if due.audio:
            starts.append((now, due.start))
    latency = [start - (now - 0.02 if start > now else now) for now, start in starts]
    assert max(start - now for now, start in starts) <= 0.02 + 1e-9
    assert len(latency) >= 199


def test_a_stall_reanchors_and_the_slip_is_paid_back_with_silence():
    playout = exact()
    playout.enqueue(audio(40), 0.0)
    playout.poll(0.0)  # 40 ms handed: the module holds it until 0.04
    # held up until 0.09: a real-time bot's frames piled up meanwhile
    playout.enqueue(audio(60), 0.09)
    due = playout.poll(0.09)
    assert due.start == pytest.approx(0.09) and playout.stalls == 0  # the module ran dry: a new spurt
    playout = exact()
    playout.enqueue(audio(2000), 0.0)
    playout.poll(0.0)
    due = playout.poll(0.2)  # held up 100 ms past the lead's end: the module ran dry at 0.1
    assert playout.stalls == 1 and due.start == pytest.approx(0.2)
    # speech is never skipped; the debt goes with the first silence of the spurt
    playout.clear(0.2)
    playout.enqueue(audio(220), 1.0)
    playout.poll(1.0)  # 120 ms handed: the module holds until 1.12
    due = playout.poll(1.22)  # held up: it ran dry for 100 ms
    assert playout.stalls == 2 and due.start == pytest.approx(1.22) and len(due.audio) == 100 * 8
    playout.enqueue(audio(200, SILENCE) + audio(100), 1.22)
    events = run(playout, 1.8, start=1.22)
    assert playout.skipped_bytes == 100 * 8
    assert sum(len(a) for _, a, _, _ in events) == (100 + 100) * 8
    assert playout.end == pytest.approx(1.0 + 0.22 + 0.3)  # where it would have ended without the stall


def test_marks_are_due_when_the_audio_before_them_has_played():
    playout = exact()
    playout.enqueue(audio(100), 0.0)
    playout.mark("a")
    playout.enqueue(audio(40), 0.0)
    playout.mark("b")
    events = run(playout, 0.3)
    marks = [(t, m) for t, _, ms, _ in events for m in ms]
    assert marks == [(0.1, "a"), (0.14, "b")]
    assert sum(len(a) for _, a, _, _ in events) == 140 * 8


def test_mark_delay_covers_the_module_starting_at_its_next_frame():
    playout = Playout(cushion=0.0, mark_delay=0.02)
    playout.enqueue(audio(100), 0.0)
    playout.mark("a")
    events = run(playout, 0.3)
    [(at, name)] = [(t, m) for t, _, ms, _ in events for m in ms]
    assert name == "a" and at == pytest.approx(0.12, abs=0.0011)


def test_a_mark_with_nothing_queued_is_echoed_at_once():
    playout = exact()
    playout.mark("idle")
    assert playout.poll(5.0).marks == ["idle"]
    playout.enqueue(audio(20), 5.0)
    playout.poll(5.0)
    playout.mark("after")
    assert playout.poll(5.01).marks == []
    assert playout.poll(5.02).marks == ["after"]


def test_clear_drops_and_cuts_and_returns_pending_marks_in_order():
    playout = exact()
    playout.enqueue(audio(60), 0.0)
    playout.mark("one")
    playout.enqueue(audio(3000), 0.0)
    playout.mark("two")
    run(playout, 0.1)  # "one" was echoed at 60 ms
    assert playout.clear(0.105) == ["two"]
    assert playout.poll(0.2).audio == b"" and playout.queued_bytes == 0
    assert playout.end == pytest.approx(0.105)  # clearAudio empties the module's buffer too
    playout.enqueue(audio(100), 1.0)
    playout.mark("x")
    playout.enqueue(audio(100), 1.0)
    playout.mark("y")
    run(playout, 1.15, start=1.0)  # "x" echoed at 1.1; "y" handed, not yet played
    assert playout.clear(1.15) == ["y"]
    assert playout.pending_marks == 0


def test_the_queue_is_bounded():
    playout = Playout(max_queued=8000)  # 1 s
    assert playout.enqueue(audio(600), 0.0) == 4800
    assert playout.enqueue(audio(600), 0.0) == 3200
    assert playout.enqueue(audio(20), 0.0) == 0
    assert playout.dropped_bytes == 600 * 8 - 3200 + 160
    assert playout.queued_bytes == 8000


def test_silence_detection():
    assert is_silent(audio(20, SILENCE)) and is_silent(audio(20, 0x7F)) and is_silent(b"")
    assert not is_silent(audio(20, SILENCE)[:-1] + b"\x11")


def test_refill_must_fit_in_the_lead():
    with pytest.raises(ValueError):
        Playout(lead=0.02, refill=0.04)

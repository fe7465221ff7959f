"""The playout queue and clock, IO-free, on a fake clock."""

import pytest

from gateway.media.playout import Playout

FRAME = 160  # 20 ms of mu-law


def audio(ms: int, byte: int = 0x11) -> bytes:
    return bytes([byte]) * (ms * 8)


def run(playout: Playout, until: float, start: float = 0.0, step: float = 0.001):
    """Poll every ``step`` seconds; return [(time, audio, marks)] of the non-empty polls."""
    out = []
    t = start
    while t <= until + 1e-9:
        due = playout.poll(t)
        if due.audio or due.marks:
            out.append((round(t, 4), due.audio, due.marks, due.start))
        t = round(t + step, 6)
    return out


def test_stream_form_hands_one_frame_when_it_is_due_without_drift():
    playout = Playout()
    playout.enqueue(audio(20_000), 0.0)  # 20 s of audio, far ahead of real time
    first = playout.poll(0.0)
    assert len(first.audio) == FRAME and first.start == 0.0
    assert playout.next_wakeup() == pytest.approx(0.02)
    # a polling loop that wakes up late every time still hands frame n at 0.02 * n
    t, starts = 0.0, []
    for _ in range(999):
        t = playout.next_wakeup() + 0.0007  # always 0.7 ms late
        due = playout.poll(t)
        assert len(due.audio) == FRAME
        starts.append(due.start)
    assert starts[-1] == pytest.approx(999 * 0.02, abs=1e-9)  # no accumulated drift
    assert all(b - a == pytest.approx(0.02) for a, b in zip(starts, starts[1:]))


def test_a_late_poll_catches_up_in_one_burst():
    playout = Playout()
    playout.enqueue(audio(200), 0.0)
    playout.poll(0.0)
    due = playout.poll(0.065)  # woke 45 ms late: frames for 20, 40 and 60 ms go now
    assert len(due.audio) == 3 * FRAME and due.start == pytest.approx(0.02)


def test_realign_reanchors_after_a_stall_instead_of_bursting():
    playout = Playout(realign=True)
    playout.enqueue(audio(200), 0.0)
    playout.mark("end")
    playout.poll(0.0)
    due = playout.poll(0.065)  # held up 45 ms: FreeSWITCH played silence meanwhile
    assert len(due.audio) == FRAME and due.start == pytest.approx(0.065)
    assert playout.next_wakeup() == pytest.approx(0.085)
    events = run(playout, 0.5, start=0.066)
    assert [(t, m) for t, _, ms, _ in events for m in ms] == [(0.245, "end")]  # 200 ms + the 45 ms stall
    on_time = Playout(realign=True)
    on_time.enqueue(audio(60), 0.0)
    assert [round(s, 3) for _, _, _, s in run(on_time, 0.1, step=0.02)] == [0.0, 0.02, 0.04]


def test_marks_are_due_when_the_audio_before_them_has_played():
    playout = Playout()
    playout.enqueue(audio(100), 0.0)
    playout.mark("a")
    playout.enqueue(audio(40), 0.0)
    playout.mark("b")
    events = run(playout, 0.3)
    marks = [(t, m) for t, _, ms, _ in events for m in ms]
    assert marks == [(0.1, "a"), (0.14, "b")]
    assert sum(len(a) for _, a, _, _ in events) == 140 * 8


def test_a_mark_with_nothing_queued_is_echoed_at_once():
    playout = Playout()
    playout.mark("idle")
    assert playout.poll(5.0).marks == ["idle"]
    playout.enqueue(audio(20), 5.0)
    playout.poll(5.0)
    playout.mark("after")
    assert playout.poll(5.01).marks == []
    assert playout.poll(5.02).marks == ["after"]


def test_clear_drops_within_one_frame_and_returns_pending_marks_in_order():
    playout = Playout()
    playout.enqueue(audio(60), 0.0)
    playout.mark("one")
    playout.enqueue(audio(3000), 0.0)
    playout.mark("two")
    run(playout, 0.1)  # "one" was echoed at 60 ms; 100 ms of audio handed so far
    marks = playout.clear(0.105)
    assert marks == ["two"]
    assert playout.poll(0.2).audio == b"" and playout.queued_bytes == 0
    assert playout.end <= 0.105 + 0.02  # what FreeSWITCH holds: at most the current frame
    # a mark already handed (scheduled) comes back too, ahead of queued ones
    playout.enqueue(audio(100), 1.0)
    playout.mark("x")
    playout.enqueue(audio(100), 1.0)
    playout.mark("y")
    run(playout, 1.15, start=1.0)  # "x" echoed at 1.1; "y" pending
    assert playout.clear(1.15) == ["y"]
    assert playout.pending_marks == 0


def test_clear_returns_scheduled_then_queued_marks():
    playout = Playout()
    playout.enqueue(audio(40), 0.0)
    playout.mark("handed")  # behind the last byte: scheduled once the audio is handed
    playout.enqueue(audio(40), 0.0)
    playout.mark("queued")
    playout.poll(0.0)
    playout.poll(0.02)  # all of the first 40 ms handed; "handed" is due at 40 ms
    assert playout.clear(0.03) == ["handed", "queued"]


def test_files_form_hands_chunks_ahead_and_cut_resets_the_clock():
    playout = Playout(lead=0.1, chunk=1600)  # 200 ms chunks, 100 ms ahead
    playout.enqueue(audio(1000), 0.0)
    events = run(playout, 1.0)
    handed = [(t, len(a) / 8000, start) for t, a, _, start in events if a]
    assert handed[0] == (0.0, 0.2, 0.0)
    assert [t for t, _, _ in handed] == pytest.approx([0.0, 0.1, 0.3, 0.5, 0.7], abs=0.0011)  # 100 ms ahead
    assert [s for _, _, s in handed] == pytest.approx([0.0, 0.2, 0.4, 0.6, 0.8])
    playout.enqueue(audio(1000), 2.0)
    playout.poll(2.0)
    playout.clear(2.05, cut=True)  # uuid_break: what was handed stops too
    playout.enqueue(audio(100), 2.06)
    assert playout.poll(2.06).start == pytest.approx(2.06)


def test_shift_reanchors_on_the_real_playback_start():
    playout = Playout(lead=0.1, chunk=1600)
    playout.enqueue(audio(400), 0.0)
    playout.mark("end")
    first = playout.poll(0.0)
    assert first.start == 0.0
    playout.shift(0.03, after=first.start)  # FreeSWITCH started it 30 ms late
    second = playout.poll(0.13)
    assert second.start == pytest.approx(0.23) and len(second.audio) == 1600
    assert playout.poll(0.42).marks == []
    assert playout.poll(0.431).marks == ["end"]


def test_partial_frames_and_a_new_spurt_after_an_underrun():
    playout = Playout()
    playout.enqueue(b"\x11" * 100, 0.0)  # less than a frame: handed as it is
    due = playout.poll(0.0)
    assert len(due.audio) == 100 and playout.end == pytest.approx(100 / 8000)
    playout.enqueue(audio(20), 0.005)  # arrives before the first bit ended: seamless
    assert playout.poll(0.0125).start == pytest.approx(0.0125)
    playout.enqueue(audio(20), 1.0)  # long after: a new spurt starting now
    assert playout.poll(1.0).start == 1.0
    assert playout.idle(1.03)

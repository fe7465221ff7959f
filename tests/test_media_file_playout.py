"""The files form's chunking and bookkeeping, IO-free, on a fake clock."""

from gateway.media.file_playout import FilePlayout


def audio(ms: int, byte: int = 0x11) -> bytes:
    return bytes([byte]) * (ms * 8)


def play_all(playout: FilePlayout, chunks) -> list:
    """FreeSWITCH wrote each chunk's file and fired ::play, in order."""
    return [playout.on_play_event(f"/tmp/c{chunk.number}.wav") for chunk in chunks]


def test_a_burst_is_cut_into_200_ms_chunks_at_once_and_the_tail_on_a_pause():
    playout = FilePlayout(chunk=0.2, cushion=0.04, idle_flush=0.1)
    playout.enqueue(audio(1050), 0.0)
    chunks = playout.take_chunks(0.0)
    assert [c.seconds for c in chunks] == [0.2] * 5  # the last 50 ms wait for more or a pause
    assert playout.next_wakeup() == 0.1
    assert playout.take_chunks(0.05) == []
    [tail] = playout.take_chunks(0.1)
    assert tail.seconds == 0.05 and playout.queued_bytes == 0


def test_a_real_time_bot_starts_with_a_cushion_then_a_chunk_per_200_ms():
    playout = FilePlayout(chunk=0.2, cushion=0.04, idle_flush=0.1)
    sent = []
    for n in range(60):  # 1.2 s of 20 ms frames
        now = (n + 1) * 0.02
        playout.enqueue(audio(20), now)
        sent += [(round(now, 3), c.seconds) for c in playout.take_chunks(now)]
    # the first waits for 240 ms, so each next chunk exists 40 ms before the one before it
    # ends (chunk 1 plays from 0.24 to 0.44; chunk 2 is ready at 0.40)
    assert sent[0] == (0.24, 0.2)
    assert [t for t, _ in sent[1:]] == [0.4, 0.6, 0.8, 1.0, 1.2]


def test_marks_come_back_when_the_chunk_that_holds_them_has_played():
    playout = FilePlayout()
    playout.enqueue(audio(300), 0.0)
    playout.mark("middle")
    playout.enqueue(audio(100), 0.0)
    playout.mark("end")
    first, second = playout.take_chunks(0.0)
    assert playout.take_chunks(0.2) == []  # nothing left but marks, already in the chunks
    assert second.marks == ["middle", "end"]  # both sit in the second chunk's audio
    play_all(playout, [first, second])
    assert playout.on_playback_stop("/tmp/c1.wav") == []
    assert playout.on_playback_stop("/tmp/c2.wav") == ["middle", "end"]
    assert playout.on_playback_stop("/tmp/unknown.wav") is None
    assert playout.idle()


def test_a_mark_after_everything_sent_waits_for_the_last_chunk_or_comes_back_at_once():
    playout = FilePlayout()
    assert playout.mark("nothing-before") == ["nothing-before"]
    playout.enqueue(audio(200), 0.0)
    [chunk] = playout.take_chunks(0.2)
    assert playout.mark("after") == []
    play_all(playout, [chunk])
    assert playout.on_playback_stop("/tmp/c1.wav") == ["after"]


def test_clear_returns_every_pending_mark_and_skips_the_play_events_of_chunks_sent_before():
    playout = FilePlayout(max_ahead=3)
    playout.enqueue(audio(200), 0.0)
    playout.mark("a")
    playout.enqueue(audio(1000), 0.0)
    playout.mark("b")
    chunks = playout.take_chunks(0.0)
    assert len(chunks) == 3 and playout.queued_bytes == 600 * 8  # at most 3 ahead
    playout.on_play_event("/tmp/c1.wav")  # the first is queued in FreeSWITCH
    assert playout.clear() == ["a", "b"]
    # ::play events of the two chunks sent before the clear come late: not played
    assert playout.on_play_event("/tmp/c2.wav") is None
    assert playout.on_play_event("/tmp/c3.wav") is None
    assert playout.on_playback_stop("/tmp/c1.wav") is None  # uuid_break stopped it: no marks
    playout.enqueue(audio(300), 1.0)
    [fresh] = playout.take_chunks(1.0)
    assert playout.on_play_event("/tmp/c4.wav") is fresh


def test_at_most_max_ahead_chunks_are_in_flight_and_a_stop_makes_room():
    playout = FilePlayout(max_ahead=2)
    playout.enqueue(audio(1000), 0.0)
    chunks = playout.take_chunks(0.0)
    assert len(chunks) == 2 and playout.next_wakeup() is None
    play_all(playout, chunks)
    playout.on_playback_stop("/tmp/c1.wav")
    assert len(playout.take_chunks(0.2)) == 1


def test_a_playback_that_never_played_drops_its_chunk_without_its_marks():
    playout = FilePlayout()
    playout.enqueue(audio(200), 0.0)
    playout.mark("m")
    chunks = playout.take_chunks(0.2)
    play_all(playout, chunks)
    assert playout.on_not_played("/tmp/c1.wav") is chunks[0]
    assert playout.on_playback_stop("/tmp/c1.wav") is None and playout.idle()


def test_the_queue_is_bounded():
    playout = FilePlayout(max_queued=8000, max_ahead=0)
    assert playout.enqueue(audio(1500), 0.0) == 8000
    assert playout.dropped_bytes == 4000

"""What a channel writes toward its far end: its file playback and the bidirectional
mod_audio_stream build's playout buffer, composed into the channel's ``Heard``.

IO-free: every method is told the time at which it happens.  The rules come from
research/downlink.md §2:

* a playback writes the file's frames from its start until it ends or is stopped;
* the bidirectional fork (cloudfieldcz/mod_audio_stream_fork) is a write-replace media
  bug: its buffer plays only on frames the channel writes anyway.  A parked channel writes
  frames only if the park loop generates silence (``send_silence_when_idle``, read once
  when media became ready: ``park``); a channel running a playback writes the file's
  frames, and the buffer's audio replaces the file's where both are there.  Where the
  channel writes nothing, the buffer keeps its audio (``pending_samples``) until it
  writes frames again;
* buffered audio plays from the next 20 ms frame boundary after it arrived, right after
  what was already buffered;
* ``clearAudio`` empties the buffer at the next frame boundary.

Modelling choices (not measured): audio placed over a playback that is stopped early goes
back to the buffer unless the channel goes on writing silence; leaving park keeps what was
already placed (a re-park reads ``send_silence_when_idle`` again).
"""

from __future__ import annotations

import math

from .heard import RATE, FrameClock, Heard


def _samples(seconds: float) -> int:
    return int(round(seconds * RATE))


def _end(start: float, pcm: bytes) -> float:
    return start + len(pcm) // 2 / RATE


class ChannelOutput:
    """The audio one channel writes, from all its sources, into ``heard``."""

    def __init__(self, heard: Heard, frames: FrameClock) -> None:
        self.heard = heard
        self.frames = frames
        #: The park loop writes silence frames (send_silence_when_idle was non-zero).
        self.idle_frames = False
        self._file: tuple[float, bytes] | None = None  # the playback in progress: start, its PCM
        self._file_end = 0.0
        self._pending = bytearray()  # buffered stream audio not placed on frames yet
        self._placed: list[tuple[float, bytes]] = []  # stream audio placed on frames, not yet over
        self._placed_until = 0.0

    # -- file playback ------------------------------------------------------------------
    def file_started(self, start: float, end: float, pcm: bytes | None) -> None:
        """A playback writes its frames from ``start`` to ``end`` (``math.inf``: until
        stopped); ``pcm`` is what it plays (None: nothing audible is known)."""
        self._file, self._file_end = (start, pcm or b""), end
        if pcm:
            self.heard.write(start, pcm)
        for at, placed in self._placed:  # write-replace: the stream's audio wins
            if _end(at, placed) > start and at < end:
                self.heard.write(at, placed)
        self._pump(start)

    def file_stopped(self, at: float) -> None:
        """The playback stopped at ``at``: its end, or earlier (break, DTMF, hangup)."""
        if self._file is None:
            return
        early = at < self._file_end
        self._file, self._file_end = None, min(at, self._file_end)
        if not early:
            return
        self.heard.cut(at)
        if self.idle_frames:  # silence frames go on: so does the stream's audio
            for start, placed in self._placed:
                if _end(start, placed) > at:
                    self.heard.write(start, placed)
        else:
            later = self._unplace_after(at)
            self._pending[:0] = b"".join(pcm for _, pcm in later)

    # -- the stream's buffer ------------------------------------------------------------
    @property
    def pending_samples(self) -> int:
        """Buffered stream samples that no frame has carried yet."""
        return len(self._pending) // 2

    def buffered_samples(self, now: float) -> int:
        """Samples in the buffer at ``now``: pending, and placed but not yet played."""
        ahead = sum(len(pcm) // 2 - max(0, min(len(pcm) // 2, _samples(now - start)))
                    for start, pcm in self._placed)
        return self.pending_samples + ahead

    def feed(self, now: float, pcm: bytes) -> None:
        """Stream audio (8 kHz) arrived in the buffer at ``now``."""
        self._placed = [(s, p) for s, p in self._placed if _end(s, p) > now]
        self._pending += pcm
        self._pump(now)

    def clear(self, now: float) -> None:
        """``clearAudio``: nothing buffered is heard from the next frame boundary on."""
        at = self.frames.next(now)
        self._pending.clear()
        self._unplace_after(at)
        self.heard.cut(at)
        if self._file is not None and self._file_end > at:  # the file's own frames go on
            start, pcm = self._file
            skip = max(0, _samples(at - start))
            stop = len(pcm) // 2 if math.isinf(self._file_end) else _samples(self._file_end - start)
            if stop > skip:
                self.heard.write(start + skip / RATE, pcm[2 * skip:2 * stop])

    # -- park and hangup ----------------------------------------------------------------
    def park(self, idle_frames: bool, now: float) -> None:
        """The park loop read ``send_silence_when_idle`` at ``now``."""
        self.idle_frames = idle_frames
        self._pump(now)

    def unpark(self) -> None:
        self.idle_frames = False

    def hangup(self, now: float) -> None:
        """Nothing is written after ``now``."""
        self.heard.cut(now)
        self._pending.clear()
        self._placed = []
        self._file = None
        self.idle_frames = False

    # -- internals ----------------------------------------------------------------------
    def _pump(self, now: float) -> None:
        """Place pending audio on the frames the channel writes from ``now`` on."""
        if not self._pending:
            return
        start = max(self.frames.next(now), self._placed_until)
        count = len(self._pending) // 2
        if not self.idle_frames:
            if self._file is None or self._file_end <= start:
                return
            start = max(start, self._file[0])
            if not math.isinf(self._file_end):
                count = min(count, _samples(self._file_end - start))
        if count <= 0:
            return
        pcm = bytes(self._pending[:2 * count])
        del self._pending[:2 * count]
        self._placed.append((start, pcm))
        self._placed_until = _end(start, pcm)
        self.heard.write(start, pcm)

    def _unplace_after(self, at: float) -> list[tuple[float, bytes]]:
        """Take the placed stream audio after ``at`` back (it is not heard there)."""
        kept, later = [], []
        for start, pcm in self._placed:
            if _end(start, pcm) <= at:
                kept.append((start, pcm))
            elif start >= at:
                later.append((start, pcm))
            else:
                k = _samples(at - start)
                kept.append((start, pcm[:2 * k]))
                later.append((start + k / RATE, pcm[2 * k:]))
        self._placed = kept
        self._placed_until = min(self._placed_until, at)
        return later

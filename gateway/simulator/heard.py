"""What a channel's far end hears: the audio the channel writes, on the real time axis.

``Heard`` keeps 8 kHz mono signed 16-bit little-endian PCM as segments ``(start, pcm)``
placed on the ``time.monotonic()`` clock.  Producers (file playback, mod_audio_stream's
playout buffer) ``write`` what they play and ``cut`` what stops playing; a later write
replaces earlier audio where they overlap, as a write-replace media bug does
(research/downlink.md §2).  The analysis helpers are pure functions of the segments, for
tests and benchmarks: how much was heard, where the holes are, when it started.

Segments may lie in the future: a playback writes the whole file at its start, the
bidirectional build its buffered audio when it arrives; a stop (break, clearAudio, hangup)
cuts what will not be heard after all.  So "heard by now" is ``between(t0, now)`` or the
part of ``intervals()`` before now, not the whole.  ``speak``/``say`` write nothing (no
TTS audio is modelled).

``FrameClock`` is a channel's 20 ms frame clock: FreeSWITCH reads and writes a channel's
audio a frame at a time, so audio starts playing on a frame boundary.
"""

from __future__ import annotations

import math
from bisect import bisect_right

import numpy as np

RATE = 8000
FRAME = 0.020
#: Segments closer than this count as one continuous stretch of audio.
CONTINUOUS = 0.001


class FrameClock:
    """Frame boundaries ``origin + k * FRAME`` (the origin is when the channel was created)."""

    def __init__(self, origin: float) -> None:
        self.origin = origin

    def next(self, t: float) -> float:
        """The first frame boundary at or after ``t`` (never before the origin)."""
        k = math.ceil((t - self.origin) / FRAME - 1e-6)
        return self.origin + max(k, 0) * FRAME


def _samples(seconds: float) -> int:
    return int(round(seconds * RATE))


def _end(start: float, pcm: bytes) -> float:
    return start + len(pcm) // 2 / RATE


class Heard:
    """The audio a channel wrote toward its far end (what that far end heard)."""

    def __init__(self) -> None:
        self._starts: list[float] = []
        self._pcm: list[bytes] = []

    # -- producers ------------------------------------------------------------------------
    def write(self, at: float, pcm: bytes) -> None:
        """Place ``pcm`` from ``at``; it replaces whatever was there on the overlap."""
        pcm = pcm[:len(pcm) - len(pcm) % 2]
        if not pcm:
            return
        end = _end(at, pcm)
        first = self._first_ending_after(at)
        last = first
        head: list[tuple[float, bytes]] = []
        tail: list[tuple[float, bytes]] = []
        while last < len(self._starts) and self._starts[last] < end:
            start, old = self._starts[last], self._pcm[last]
            if start < at:
                head.append((start, old[:2 * _samples(at - start)]))
            if _end(start, old) > end:
                skip = _samples(end - start)
                tail.append((start + skip / RATE, old[2 * skip:]))
            last += 1
        pieces = [p for p in head if p[1]] + [(at, pcm)] + [p for p in tail if p[1]]
        self._starts[first:last] = [s for s, _ in pieces]
        self._pcm[first:last] = [p for _, p in pieces]

    def cut(self, at: float) -> None:
        """Nothing is heard after ``at`` (a segment spanning it is truncated)."""
        first = self._first_ending_after(at)
        if first == len(self._starts):
            return
        start, pcm = self._starts[first], self._pcm[first]
        del self._starts[first:], self._pcm[first:]
        if start < at:
            self._starts.append(start)
            self._pcm.append(pcm[:2 * _samples(at - start)])

    def _first_ending_after(self, t: float) -> int:
        """Index of the first segment that ends after ``t`` (segments never overlap, so
        their ends are in the same order as their starts)."""
        i = max(0, bisect_right(self._starts, t) - 1)
        while i < len(self._starts) and _end(self._starts[i], self._pcm[i]) <= t:
            i += 1
        return i

    # -- the segments ---------------------------------------------------------------------
    @property
    def segments(self) -> list[tuple[float, bytes]]:
        """``(start, pcm)`` in time order."""
        return list(zip(self._starts, self._pcm))

    def __iter__(self):
        return iter(self.segments)

    def __len__(self) -> int:
        return len(self._starts)

    def __getitem__(self, index):
        return self.segments[index]

    # -- analysis -------------------------------------------------------------------------
    def samples(self) -> int:
        """Total samples heard."""
        return sum(len(pcm) // 2 for pcm in self._pcm)

    def intervals(self) -> list[tuple[float, float]]:
        """``(start, end)`` of heard audio, segments within ``CONTINUOUS`` of each other merged."""
        merged: list[list[float]] = []
        for start, pcm in zip(self._starts, self._pcm):
            end = _end(start, pcm)
            if merged and start - merged[-1][1] <= CONTINUOUS:
                merged[-1][1] = max(merged[-1][1], end)
            else:
                merged.append([start, end])
        return [(a, b) for a, b in merged]

    def gaps(self, min_seconds: float = 0.0) -> list[float]:
        """Durations of the holes between consecutive intervals, those of ``min_seconds`` or more."""
        spans = self.intervals()
        holes = [b[0] - a[1] for a, b in zip(spans, spans[1:])]
        return [h for h in holes if h >= min_seconds]

    def first_after(self, t: float) -> float | None:
        """The first instant at or after ``t`` at which audio is heard (``t`` itself if
        audio is playing then); None if nothing is heard from ``t`` on."""
        for start, end in self.intervals():
            if end > t:
                return max(start, t)
        return None

    def between(self, t0: float, t1: float) -> bytes:
        """The PCM heard from ``t0`` to ``t1``, silence where nothing was heard."""
        n = max(0, _samples(t1 - t0))
        out = np.zeros(n, dtype="<i2")
        for start, pcm in zip(self._starts, self._pcm):
            if start >= t1 or _end(start, pcm) <= t0:
                continue
            samples = np.frombuffer(pcm, dtype="<i2")
            offset = _samples(start - t0)
            lo, hi = max(0, offset), min(n, offset + len(samples))
            if hi > lo:
                out[lo:hi] = samples[lo - offset:hi - offset]
        return out.tobytes()

    def end(self) -> float | None:
        """When the last heard audio ends (None: nothing heard)."""
        if not self._starts:
            return None
        return _end(self._starts[-1], self._pcm[-1])

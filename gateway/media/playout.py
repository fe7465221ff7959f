"""The stream form's playout clock for a bot's audio, without IO.

In the ``stream`` form a bidirectional mod_audio_stream build keeps a buffer per call and
writes from it into the call every 20 ms (write-replace), and ``{"type":"clearAudio"}``
empties it at the next frame (research/downlink.md §2).  The module has no marks, so the
bridge keeps its own clock of what that buffer holds and echoes a mark when the audio
before it has played (media-protocols.md §1.3, §1.4).  Audio is kept here, not in the
module, beyond a short lead, so that the bridge's clock stays exact and a queue can be
bounded and inspected; ``clear`` empties both (the bridge sends ``clearAudio``).

* Positions are counted in mu-law bytes (8 per ms) from the start of a *talk spurt*: byte
  ``p`` plays at ``origin + p / 8000``, computed from the origin every time, never
  accumulated, so the clock does not drift.
* A spurt starts when audio arrives and the module's buffer has run dry.  It is handed
  over once ``cushion`` seconds of it are queued (or it has waited that long), so the
  module starts with a little in hand and a bot frame that comes a few milliseconds late
  does not leave a hole.  That cushion is the latency the bridge adds.
* ``poll(now)`` hands over the audio due within ``lead`` seconds; ``next_wakeup`` asks to
  be polled again when ``refill`` of that lead has played, so a burst is handed in pieces
  of ``refill`` rather than a frame per wakeup.
* If the bridge was held up and the module's buffer ran dry (a poll finds audio that
  should already be playing), the clock is re-anchored at ``now``: the caller heard
  silence meanwhile, and everything after plays that much later.  That slip is a *debt*:
  it is paid back by skipping silent frames of the same spurt (a real-time bot sends
  silence between sentences), so a stall does not raise the call's latency for good.
* A mark becomes due ``mark_delay`` after the audio before it has played (the module
  starts a buffer at its next 20 ms frame, so up to one frame after we hand it over); a
  mark with nothing before it is due at once.  ``clear()`` drops the queued audio, cuts
  what was handed, and returns every pending mark in order (Twilio echoes them all).
* At most ``max_queued`` bytes wait here (``enqueue`` returns what it took; the rest is
  dropped and counted in ``dropped_bytes``): a bot cannot make a call hold an hour of
  audio.

Times are plain floats from the caller's monotonic clock; nothing here sleeps.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

BYTES_PER_SECOND = 8000  # mu-law, 8 kHz
FRAME_BYTES = 160  # 20 ms
MAX_QUEUED_SECONDS = 60.0

#: mu-law codes whose magnitude is at most 120 of 32,124 (about -48 dBFS): exponent 0.
_QUIET_CODES = bytes(code for code in range(256) if code & 0x70 == 0x70)


def is_silent(ulaw: bytes) -> bool:
    """Whether every sample of ``ulaw`` is near zero."""
    return not ulaw.translate(None, _QUIET_CODES)


@dataclass(slots=True)
class Due:
    """What ``poll`` hands over: ``audio`` to send now (it starts playing at ``start``)
    and ``marks`` to echo now."""

    audio: bytes = b""
    start: float = 0.0
    marks: list[str] = field(default_factory=list)


class Playout:
    def __init__(self, *, lead: float = 0.1, refill: float = 0.04, cushion: float = 0.02,
                 mark_delay: float = 0.02, rate: int = BYTES_PER_SECOND, frame: int = FRAME_BYTES,
                 max_queued: int = int(MAX_QUEUED_SECONDS * BYTES_PER_SECOND)) -> None:
        if frame <= 0 or not 0 < refill <= lead:
            raise ValueError("need frame > 0 and 0 < refill <= lead")
        self.lead = lead
        self.refill = refill
        self.cushion = cushion
        self.mark_delay = mark_delay
        self.rate = rate
        self.frame = frame
        self.max_queued = max_queued
        self._queue: deque[bytes | str] = deque()  # audio (bytes) and marks (str), in order
        self._queued_bytes = 0
        self._scheduled: deque[tuple[float, str]] = deque()  # (due, name): audio before it handed
        self._marks = 0  # marks queued or scheduled, not yet returned
        self._active = False
        self._waiting_since = 0.0  # when the first audio of a spurt not yet started arrived
        self._origin = 0.0
        self._pos = 0  # bytes handed in this spurt
        self._end = float("-inf")  # when the last handed audio stops playing
        self._debt = 0.0  # seconds this spurt slipped because we were held up
        self.handed_bytes = 0  # totals, for counters
        self.dropped_bytes = 0
        self.skipped_bytes = 0  # silence skipped to pay back a stall
        self.stalls = 0

    # -- input ----------------------------------------------------------------------------
    def enqueue(self, audio: bytes, now: float) -> int:
        """Queue ``audio``; returns how many bytes were taken (the rest is over the bound)."""
        if not audio:
            return 0
        room = self.max_queued - self._queued_bytes
        if room < len(audio):
            self.dropped_bytes += len(audio) - max(room, 0)
            audio = audio[:max(room, 0)]
            if not audio:
                return 0
        if self._active and not self._queued_bytes and self._end < now:
            self._active = False  # the module's buffer ran dry: the next audio is a new spurt
        if not self._active and not self._queued_bytes:
            self._waiting_since = now
        self._queue.append(bytes(audio))
        self._queued_bytes += len(audio)
        return len(audio)

    def mark(self, name: str) -> None:
        self._queue.append(name)
        self._marks += 1

    def clear(self, now: float) -> list[str]:
        """Drop every queued byte and stop what was handed; return every pending mark,
        oldest first."""
        marks = [name for _, name in self._scheduled]
        marks += [item for item in self._queue if isinstance(item, str)]
        self.dropped_bytes += self._queued_bytes
        self._queue.clear()
        self._scheduled.clear()
        self._marks = 0
        self._queued_bytes = 0
        self._active = False
        self._end = min(self._end, now)
        return marks

    # -- output ---------------------------------------------------------------------------
    def poll(self, now: float) -> Due:
        due = Due()
        parts: list[bytes] = []
        while self._queue:
            if not self._queued_bytes:
                # only marks are left: each is due when what was handed has played
                while self._queue:
                    self._schedule_mark(max(now, self._end), self._queue.popleft())
                break
            if not self._active:
                if self._queued_bytes < self.cushion * self.rate and now < self._waiting_since + self.cushion:
                    break
                self._active = True
                self._origin = max(now, self._end)
                self._pos = 0
                self._debt = 0.0
            start = self._next_start()
            if start - self.lead > now:
                break
            if start < now - self.frame / self.rate:
                # Held up: the module's buffer ran dry and the caller heard silence.  Play
                # on from now (no burst of overdue audio), and owe the slip.
                self._origin += now - start
                self._debt += now - start
                self.stalls += 1
                start = now
            frame = self._take(self.frame)
            if frame is None:
                continue  # a silent frame skipped to pay back a stall
            if not parts:
                due.start = start
            parts.append(frame)
            if not self._queued_bytes:
                self._flush_marks()
        if parts:
            due.audio = b"".join(parts)
        while self._scheduled and self._scheduled[0][0] <= now:
            due.marks.append(self._scheduled.popleft()[1])
        self._marks -= len(due.marks)
        return due

    def next_wakeup(self) -> float | None:
        """When ``poll`` has something to do next (None: nothing until new input)."""
        times = []
        if self._queue:
            if not self._queued_bytes:
                return float("-inf")
            if not self._active:
                if self._queued_bytes >= self.cushion * self.rate:
                    return float("-inf")
                return self._waiting_since + self.cushion
            times.append(self._next_start() - self.lead + self.refill)
        if self._scheduled:
            times.append(self._scheduled[0][0])
        return min(times) if times else None

    # -- state ----------------------------------------------------------------------------
    @property
    def queued_bytes(self) -> int:
        return self._queued_bytes

    @property
    def end(self) -> float:
        """When the audio handed so far has finished playing."""
        return self._end

    @property
    def pending_marks(self) -> int:
        return self._marks

    def idle(self, now: float) -> bool:
        return not self._queue and not self._scheduled and self._end <= now

    # -- internals ------------------------------------------------------------------------
    def _next_start(self) -> float:
        return self._origin + self._pos / self.rate

    def _schedule_mark(self, at: float, name: str) -> None:
        self._scheduled.append((at + self.mark_delay, name))

    def _take(self, limit: int) -> bytes | None:
        """Up to ``limit`` audio bytes from the queue's head, scheduling the marks met on
        the way at the position they sit at.  None: the bytes were silence, skipped
        to pay back the spurt's debt."""
        out = bytearray()
        while self._queue and len(out) < limit:
            item = self._queue[0]
            if isinstance(item, str):
                self._queue.popleft()
                self._schedule_mark(self._origin + (self._pos + len(out)) / self.rate, item)
                continue
            need = limit - len(out)
            if len(item) <= need:
                out += item
                self._queue.popleft()
            else:
                out += item[:need]
                self._queue[0] = item[need:]
        self._queued_bytes -= len(out)
        if self._debt > 1e-6 and is_silent(out):
            seconds = len(out) / self.rate
            self._debt = max(0.0, self._debt - seconds)
            self.skipped_bytes += len(out)
            return None
        self._pos += len(out)
        self.handed_bytes += len(out)
        self._end = self._next_start()
        return bytes(out)

    def _flush_marks(self) -> None:
        """Marks right behind the last handed byte are due when it has played."""
        while self._queue and isinstance(self._queue[0], str):
            self._schedule_mark(self._end, self._queue.popleft())

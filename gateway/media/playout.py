"""The playout queue and clock for a bot's audio, without IO.

The bot sends audio ahead of real time, in chunks of any size, with ``mark``s between
them and ``clear`` to barge in.  FreeSWITCH must get that audio at the pace it plays,
because whatever FreeSWITCH already holds can no longer be cleared, and a mark must be
echoed when the audio before it has *played* (media-protocols.md §1.3, §1.4, §6).  So the
bridge keeps the audio here and hands it over on a clock:

* positions are counted in mu-law bytes (8 per ms) from the start of a *talk spurt*;
  byte ``p`` plays at ``origin + p / 8000``, computed from the origin every time, never
  accumulated, so the clock does not drift (aiortc's ``start + timestamp / rate`` rule);
* a spurt starts when audio arrives and nothing is playing (at ``max(now, end of the
  audio already handed)``) and ends when the queue runs dry;
* ``poll(now)`` hands over what is due: everything whose play time is within ``lead``
  seconds, ``chunk`` bytes at a time at most.  The *stream* form uses ``lead=0``,
  ``chunk=160``: one 20 ms frame at the moment it plays, so ``clear`` silences the call
  within one frame.  The *files* form hands bigger chunks some time ahead (FreeSWITCH
  needs time to write the file, fire the event and start ``uuid_broadcast``);
* a mark becomes due when the audio before it has played (its position's play time);
  a mark with nothing before it is due at once; ``clear()`` drops the queued audio and
  returns every pending mark, in order (Twilio echoes them all on clear);
* ``shift()`` re-anchors the clock when FreeSWITCH reports that a chunk started later (or
  earlier) than planned (the files form watches PLAYBACK_START);
* with ``realign`` (the stream form) a poll that comes more than a chunk late re-anchors
  the clock at ``now`` instead of handing the overdue audio in a burst: FreeSWITCH played
  silence while we were held up, and a burst would sit in its buffer out of reach of
  ``clear``.

Times are plain floats from the caller's monotonic clock; nothing here sleeps.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

BYTES_PER_SECOND = 8000  # mu-law, 8 kHz


@dataclass(slots=True)
class Due:
    """What ``poll`` hands over: ``audio`` to send now (it starts playing at ``start``)
    and ``marks`` to echo now."""

    audio: bytes = b""
    start: float = 0.0
    marks: list[str] = field(default_factory=list)


class Playout:
    def __init__(self, *, lead: float = 0.0, chunk: int = 160, rate: int = BYTES_PER_SECOND,
                 realign: bool = False) -> None:
        if chunk <= 0:
            raise ValueError("chunk must be positive")
        self.lead = lead
        self.chunk = chunk
        self.realign = realign
        self.rate = rate
        self._queue: deque[bytes | str] = deque()  # audio (bytes) and marks (str), in order
        self._queued_bytes = 0
        self._scheduled: deque[tuple[float, str]] = deque()  # (due, name): audio before it handed
        self._active = False
        self._origin = 0.0
        self._pos = 0  # bytes handed in this spurt
        self._end = float("-inf")  # when the last handed audio stops playing
        self.handed_bytes = 0  # totals, for counters
        self.dropped_bytes = 0

    # -- input ----------------------------------------------------------------------------
    def enqueue(self, audio: bytes, now: float) -> None:
        if not audio:
            return
        if self._active and not self._queued_bytes and self._next_start() < now:
            self._active = False  # the queue ran dry and the clock passed: a new spurt
        self._queue.append(bytes(audio))
        self._queued_bytes += len(audio)

    def mark(self, name: str) -> None:
        self._queue.append(name)

    def clear(self, now: float, *, cut: bool = False) -> list[str]:
        """Drop every queued byte; return every pending mark, oldest first.  ``cut``: the
        audio already handed was stopped too (files form: ``uuid_break``)."""
        marks = [name for _, name in self._scheduled]
        marks += [item for item in self._queue if isinstance(item, str)]
        self.dropped_bytes += self._queued_bytes
        self._queue.clear()
        self._scheduled.clear()
        self._queued_bytes = 0
        self._active = False
        if cut:
            self._end = min(self._end, now)
        return marks

    def shift(self, delta: float, after: float) -> None:
        """Move everything planned to play at or after ``after`` by ``delta`` seconds."""
        if self._active:
            self._origin += delta
        if self._end >= after:
            self._end += delta
        self._scheduled = deque((due + delta if due >= after else due, name) for due, name in self._scheduled)

    # -- output ---------------------------------------------------------------------------
    def poll(self, now: float) -> Due:
        due = Due()
        parts: list[bytes] = []
        while self._queue:
            if not self._queued_bytes:
                # only marks are left: each is due when what was handed has played
                while self._queue:
                    self._scheduled.append((max(now, self._end), self._queue.popleft()))
                break
            if not self._active:
                self._active = True
                self._origin = max(now, self._end)
                self._pos = 0
            start = self._next_start()
            if start - self.lead > now:
                break
            if self.realign and now - start > self.chunk / self.rate:
                # We were held up for more than a chunk: FreeSWITCH played silence
                # meanwhile.  Re-anchor rather than burst, so it never holds more than
                # one chunk (clear stays within one frame) and marks stay exact.
                self.shift(now - start, after=start)
                start = now
            if not parts:
                due.start = start
            parts.append(self._take(self.chunk))
            if not self._queued_bytes:
                self._flush_marks()
        if parts:
            due.audio = b"".join(parts)
        while self._scheduled and self._scheduled[0][0] <= now:
            due.marks.append(self._scheduled.popleft()[1])
        return due

    def next_wakeup(self) -> float | None:
        """When ``poll`` has something to do next (None: nothing until new input)."""
        times = []
        if self._queue:
            if not self._active or not self._queued_bytes:
                return float("-inf")
            times.append(self._next_start() - self.lead)
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
        return len(self._scheduled) + sum(1 for item in self._queue if isinstance(item, str))

    def idle(self, now: float) -> bool:
        return not self._queue and not self._scheduled and self._end <= now

    # -- internals ------------------------------------------------------------------------
    def _next_start(self) -> float:
        return self._origin + self._pos / self.rate

    def _take(self, limit: int) -> bytes:
        """Up to ``limit`` audio bytes from the queue's head, scheduling the marks met on
        the way at the position they sit at."""
        out = bytearray()
        while self._queue and len(out) < limit:
            item = self._queue[0]
            if isinstance(item, str):
                self._queue.popleft()
                self._scheduled.append((self._origin + (self._pos + len(out)) / self.rate, item))
                continue
            need = limit - len(out)
            if len(item) <= need:
                out += item
                self._queue.popleft()
            else:
                out += item[:need]
                self._queue[0] = item[need:]
        self._pos += len(out)
        self._queued_bytes -= len(out)
        self.handed_bytes += len(out)
        self._end = self._next_start()
        return bytes(out)

    def _flush_marks(self) -> None:
        """Marks right behind the last handed byte are due when it has played."""
        while self._queue and isinstance(self._queue[0], str):
            self._scheduled.append((self._end, self._queue.popleft()))

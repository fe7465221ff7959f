"""The files form's playout of a bot's audio, without IO: chunks, files, marks.

The community mod_audio_stream cannot inject audio into a call.  It writes each
``streamAudio`` message to a file and fires ``mod_audio_stream::play`` with the file's
path; playing it is the controller's job.  What works on a real switch (research/
downlink.md §1, §2): chunks of about 200 ms, each played with an ESL ``sendmsg`` execute of
``playback`` as soon as it exists.  FreeSWITCH queues those on the channel and plays them
back to back with no gap (``uuid_broadcast`` waits 5 lead frames per file, which leaves a
hole of ~110 ms after every chunk); ``uuid_break <uuid> all`` stops the current file and
flushes the queued ones.  PLAYBACK_START is not a clock: it comes late on a real switch,
so nothing here waits for it.

So this class turns the bot's audio into chunks and follows each one through its life:

1. *queued*: the bot's audio and marks, in order;
2. *sent*: cut into a chunk of ``chunk`` bytes (fewer when the bot has paused for
   ``idle_flush`` seconds) and handed to FreeSWITCH as a ``streamAudio``,
   waiting for its ``::play`` event (they come in the order the chunks were sent);
3. *playing*: its file queued with ``playback``, until its PLAYBACK_STOP, when the marks
   right behind its audio are echoed: a mark comes back only once FreeSWITCH has
   really played the audio before it (a mark inside a chunk waits for its end: marks
   never cut chunks, since a chunk too short to cover the next one's making leaves a hole).

A spurt (audio that arrives while nothing is playing) starts once ``chunk + cushion``
bytes are queued, so the next chunk of a real-time bot already exists when the first one
ends; later chunks are cut as soon as they are full.  At most ``max_ahead`` chunks are
sent or playing at a time (what a ``clear`` has to flush); the rest waits here, bounded
by ``max_queued`` bytes (the excess is dropped and counted).  ``clear`` echoes every
pending mark (Twilio's rule), forgets every chunk, and the ``::play`` events of chunks
sent before it are skipped when they come.

Times are plain floats from the caller's monotonic clock; nothing here sleeps.
"""

from __future__ import annotations

import itertools
from collections import deque
from dataclasses import dataclass, field

BYTES_PER_SECOND = 8000  # mu-law, 8 kHz
MAX_QUEUED_SECONDS = 60.0


@dataclass(slots=True)
class Chunk:
    """One piece of the bot's audio on its way through FreeSWITCH."""

    number: int
    audio: bytes
    marks: list[str] = field(default_factory=list)  # echoed when it has played
    path: str | None = None  # the file mod_audio_stream wrote

    @property
    def seconds(self) -> float:
        return len(self.audio) / BYTES_PER_SECOND


class FilePlayout:
    def __init__(self, *, chunk: float = 0.2, cushion: float = 0.04, idle_flush: float = 0.1,
                 max_ahead: int = 10, max_queued: int = int(MAX_QUEUED_SECONDS * BYTES_PER_SECOND)) -> None:
        self.chunk = int(chunk * BYTES_PER_SECOND)
        self.cushion = int(cushion * BYTES_PER_SECOND)
        self.idle_flush = idle_flush
        self.max_ahead = max_ahead
        self.max_queued = max_queued
        self._queue: deque[bytes | str] = deque()
        self._queued_bytes = 0
        self._last_audio_at = 0.0
        self._sent: deque[Chunk] = deque()  # waiting for their ::play event, in order
        self._playing: dict[str, Chunk] = {}  # file path -> chunk, until PLAYBACK_STOP
        self._stale_plays = 0  # ::play events still to come for chunks sent before a clear
        self._marks = 0  # marks held, not yet returned
        self._numbers = itertools.count(1)
        self.handed_bytes = 0
        self.dropped_bytes = 0
        self.played_bytes = 0

    # -- input from the bot ---------------------------------------------------------------
    def enqueue(self, audio: bytes, now: float) -> int:
        """Queue ``audio``; returns how many bytes were taken (the rest is over the bound)."""
        room = max(self.max_queued - self._queued_bytes, 0)
        if len(audio) > room:
            self.dropped_bytes += len(audio) - room
            audio = audio[:room]
        if audio:
            self._queue.append(bytes(audio))
            self._queued_bytes += len(audio)
            self._last_audio_at = now
        return len(audio)

    def mark(self, name: str) -> list[str]:
        """Queue a mark; returns it at once (to echo now) if nothing is before it."""
        if self._queued_bytes:
            self._queue.append(name)
            self._marks += 1
            return []
        last = self._latest_in_flight()
        if last is None:
            return [name]
        last.marks.append(name)
        self._marks += 1
        return []

    def clear(self) -> list[str]:
        """Forget all audio; returns every pending mark, oldest first."""
        marks = [name for chunk in self._in_flight() for name in chunk.marks]
        marks += [item for item in self._queue if isinstance(item, str)]
        self.dropped_bytes += self._queued_bytes
        self._queue.clear()
        self._queued_bytes = 0
        self._stale_plays += len(self._sent)
        self._sent.clear()
        self._playing.clear()
        self._marks = 0
        return marks

    # -- chunks to send -------------------------------------------------------------------
    def take_chunks(self, now: float) -> list[Chunk]:
        """The chunks to hand to FreeSWITCH now (``streamAudio``), in order."""
        out: list[Chunk] = []
        while self._queued_bytes and len(self._sent) + len(self._playing) < self.max_ahead:
            idle = now - self._last_audio_at >= self.idle_flush
            starting = not self._sent and not self._playing and not out
            need = self.chunk + (self.cushion if starting else 0)
            if self._queued_bytes < need and not idle:
                break
            chunk = self._cut()
            self._sent.append(chunk)
            self.handed_bytes += len(chunk.audio)
            out.append(chunk)
        return out

    def next_wakeup(self) -> float | None:
        """When ``take_chunks`` may have a partial chunk to flush (None: only on input)."""
        if self._queued_bytes and len(self._sent) + len(self._playing) < self.max_ahead:
            return self._last_audio_at + self.idle_flush
        return None

    # -- FreeSWITCH's events --------------------------------------------------------------
    def on_play_event(self, path: str) -> Chunk | None:
        """``mod_audio_stream::play``: the file of the oldest sent chunk; returns the chunk
        to play (None: it was sent before a clear)."""
        if self._stale_plays:
            self._stale_plays -= 1
            return None
        if not self._sent:
            return None
        chunk = self._sent.popleft()
        chunk.path = path
        self._playing[path] = chunk
        return chunk

    def on_playback_stop(self, path: str) -> list[str] | None:
        """PLAYBACK_STOP of a file: the marks its chunk held (None: not one of ours)."""
        chunk = self._playing.pop(path, None)
        if chunk is None:
            return None
        self.played_bytes += len(chunk.audio)
        self._marks -= len(chunk.marks)
        return chunk.marks

    def on_not_played(self, path: str) -> Chunk | None:
        """FreeSWITCH finished the ``playback`` of ``path`` without playing it (no such
        file): the chunk is dropped and its marks are not echoed."""
        chunk = self._playing.pop(path, None)
        if chunk is not None:
            self._marks -= len(chunk.marks)
        return chunk

    # -- state ----------------------------------------------------------------------------
    @property
    def queued_bytes(self) -> int:
        return self._queued_bytes

    @property
    def in_flight(self) -> int:
        return len(self._sent) + len(self._playing)

    @property
    def pending_marks(self) -> int:
        return self._marks

    def idle(self) -> bool:
        return not self._queue and not self._sent and not self._playing

    # -- internals ------------------------------------------------------------------------
    def _in_flight(self):
        return itertools.chain(self._playing.values(), self._sent)

    def _latest_in_flight(self) -> Chunk | None:
        if self._sent:
            return self._sent[-1]
        if self._playing:
            return next(reversed(self._playing.values()))
        return None

    def _cut(self) -> Chunk:
        """The next chunk: up to ``chunk`` bytes, with the marks that sit inside or right
        behind its audio (each is echoed once the whole chunk has played)."""
        audio = bytearray()
        marks: list[str] = []
        while self._queue and len(audio) < self.chunk:
            item = self._queue[0]
            if isinstance(item, str):
                marks.append(self._queue.popleft())
                continue
            need = self.chunk - len(audio)
            if len(item) <= need:
                audio += item
                self._queue.popleft()
            else:
                audio += item[:need]
                self._queue[0] = item[need:]
        while self._queue and isinstance(self._queue[0], str):
            marks.append(self._queue.popleft())
        self._queued_bytes -= len(audio)
        return Chunk(next(self._numbers), bytes(audio), marks)

"""How a bot's audio reaches the caller: the two playback forms of a node.

Which form a node can use depends on its mod_audio_stream build (research/downlink.md;
``voicegw doctor`` plays a tone through the configured form and says whether it is heard):

* ``stream`` (a bidirectional build, cloudfieldcz/mod_audio_stream_fork): the bot's audio
  goes to FreeSWITCH as binary L16 frames, which the module writes straight into the call
  (write-replace) from a buffer of its own; ``{"type":"clearAudio"}`` empties that buffer
  at the next frame.  The module has no marks: the bridge's clock (``playout.Playout``)
  echoes them.  A parked channel plays nothing this way unless it has
  ``send_silence_when_idle`` set before it is parked (the dialplan and the originate set
  it: ``gateway.dialplan_names.STREAM_CHANNEL_VARIABLES``).
* ``files`` (the community build, and the fallback): each chunk of about 200 ms goes as a
  ``streamAudio`` message, which the module writes to a file and reports with
  ``mod_audio_stream::play``; the bridge then queues it on the channel with a ``sendmsg``
  execute of ``playback`` (``Control.play``), and clears with ``uuid_break <uuid> all``
  (``file_playout.FilePlayout``).  Marks come back on the PLAYBACK_STOP of their chunk.

A downlink is driven by its ``CallStream`` (bot events, ESL events of the call, a clock);
it sends to FreeSWITCH itself and returns the marks to echo.
"""

from __future__ import annotations

import base64
import io
import json
import wave
from typing import Callable, Protocol

from gateway.media import codec
from gateway.media.file_playout import FilePlayout
from gateway.media.playout import Playout

FORMS = ("files", "stream")
CLEAR_AUDIO = json.dumps({"type": "clearAudio"}, separators=(",", ":"))


class FsSink(Protocol):
    """The FreeSWITCH end of the call's stream (``bridge.FsSocket``)."""

    def send_text(self, text: str) -> bool: ...
    def send_bytes(self, data: bytes) -> bool: ...


class Control(Protocol):
    """The ESL commands the files form needs (the call controller has them)."""

    def play(self, call_uuid: str, path: str) -> None: ...
    def break_playback(self, call_uuid: str) -> None: ...


def wav_bytes(pcm: bytes, rate: int = 8000) -> bytes:
    out = io.BytesIO()
    with wave.open(out, "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(rate)
        wav.writeframes(pcm)
    return out.getvalue()


def stream_audio_message(pcm: bytes, rate: int = 8000, data_type: str = "raw") -> str:
    """mod_audio_stream's ``streamAudio`` message (research/freeswitch.md §4.4)."""
    return json.dumps({"type": "streamAudio", "data": {
        "audioDataType": data_type, "sampleRate": rate, "audioData": base64.b64encode(pcm).decode("ascii")}},
        separators=(",", ":"))


class _Downlink:
    """What both forms do alike: their playout core holds the audio and the clock."""

    playout: Playout | FilePlayout

    def media(self, ulaw: bytes, now: float) -> int:
        return self.playout.enqueue(ulaw, now)

    def next_wakeup(self) -> float | None:
        return self.playout.next_wakeup()

    @property
    def pending_marks(self) -> int:
        return self.playout.pending_marks


class StreamDownlink(_Downlink):
    """Binary L16 frames into a bidirectional module's buffer, on the bridge's clock."""

    form = "stream"

    def __init__(self, fs: Callable[[], FsSink | None], **playout) -> None:
        self._fs = fs
        self.playout = Playout(**playout)
        self.sent_messages = 0

    def mark(self, name: str) -> list[str]:
        self.playout.mark(name)
        return []

    def clear(self, now: float) -> list[str]:
        marks = self.playout.clear(now)
        fs = self._fs()
        if fs is not None:
            fs.send_text(CLEAR_AUDIO)
        return marks

    def tick(self, now: float) -> list[str]:
        due = self.playout.poll(now)
        fs = self._fs()
        if due.audio and fs is not None and fs.send_bytes(codec.ulaw_to_l16(due.audio)):
            self.sent_messages += 1
        return due.marks

    def esl_event(self, event) -> list[str]:
        return []

    def idle(self, now: float) -> bool:
        return self.playout.idle(now)

    def stats(self) -> dict:
        p = self.playout
        return {"queued_bytes": p.queued_bytes, "dropped_bytes": p.dropped_bytes, "handed_bytes": p.handed_bytes,
                "skipped_silence_bytes": p.skipped_bytes, "stalls": p.stalls, "handed_messages": self.sent_messages}


class FileDownlink(_Downlink):
    """~200 ms files played back to back with ``sendmsg`` playback; see the module docstring."""

    form = "files"

    def __init__(self, fs: Callable[[], FsSink | None], submit: Callable[[tuple], None], **playout) -> None:
        self._fs = fs
        self._submit = submit  # ("play", path) | ("break",), run in order by the stream
        self.playout = FilePlayout(**playout)
        self.sent_messages = 0
        self.plays = 0
        self.not_played = 0

    def mark(self, name: str) -> list[str]:
        return self.playout.mark(name)

    def clear(self, now: float) -> list[str]:
        marks = self.playout.clear()
        self._submit(("break",))
        return marks

    def tick(self, now: float) -> list[str]:
        fs = self._fs()
        if fs is None:
            return []
        for chunk in self.playout.take_chunks(now):
            pcm = codec.ulaw_to_l16(chunk.audio)
            if fs.send_text(stream_audio_message(wav_bytes(pcm), data_type="wav")):
                self.sent_messages += 1
        return []

    def esl_event(self, event) -> list[str]:
        name = event.name
        if name == "CUSTOM" and event.subclass == "mod_audio_stream::play":
            try:
                path = json.loads(event.body or "")["file"]
            except (ValueError, KeyError, TypeError):
                return []
            chunk = self.playout.on_play_event(path)
            if chunk is not None:
                self.plays += 1
                self._submit(("play", path))
        elif name == "PLAYBACK_STOP":
            marks = self.playout.on_playback_stop(event.get("Playback-File-Path") or "")
            return marks or []
        elif name == "CHANNEL_EXECUTE_COMPLETE" and event.get("Application") == "playback":
            # A playback that never started (no PLAYBACK_STOP came first): not played.
            if self.playout.on_not_played(event.get("Application-Data") or "") is not None:
                self.not_played += 1
        return []

    def idle(self, now: float) -> bool:
        return self.playout.idle()

    def stats(self) -> dict:
        p = self.playout
        return {"queued_bytes": p.queued_bytes, "dropped_bytes": p.dropped_bytes, "handed_bytes": p.handed_bytes,
                "played_bytes": p.played_bytes, "handed_messages": self.sent_messages, "plays": self.plays,
                "chunks_not_played": self.not_played}

"""Is a bot heard on this node?  A loopback test call through the real media path.

Which playback form works depends on the node's mod_audio_stream build and on channel
variables (research/downlink.md): the community build plays nothing in the ``stream``
form while marks would come back as if played, and a bidirectional build plays nothing on
a channel that lacks ``send_silence_when_idle``.  None of that shows in a reply, so the
probe listens, the way the real switch was measured:

1. ``originate {send_silence_when_idle=-1,…}loopback/<probe>/gateway_probe &park()``: leg
   A is parked like a gateway call; leg B runs the shipped ``gateway_probe`` context
   (answer, park) and stands for the caller;
2. ``uuid_record`` on leg B (``other_loopback_leg_uuid``): what the caller hears;
3. ``uuid_audio_stream`` on leg A to a ``CallStream`` of the bridge in the form under test,
   whose bot is :class:`ToneBot`: a second of 1 kHz tone at once, then a mark;
4. the recording is read back and cut in 20 ms frames, each of which holds the tone or not
   (its energy at 1 kHz): the fraction heard, the first audio, the longest hole, and
   whether the mark came back before its audio had been heard.

The recording is written by FreeSWITCH and read by the gateway, so the media directory
must be the same path on both (``gateway.recordings``); so must the bridge be reachable
from FreeSWITCH, as for every call.
"""

from __future__ import annotations

import logging
import os
import time
import uuid as uuidlib
import wave
from dataclasses import dataclass
from pathlib import Path

import gevent
import numpy as np
from gevent.event import Event as Flag

from gateway import dialplan_names as names
from gateway.calls.dialstring import originate_command
from gateway.esl import commands
from gateway.esl.app_args import UnsafeArgument
from gateway.esl.connection import CommandFailed, ESLLink
from gateway.media import codec
from gateway.media.bridge import MediaBridge
from gateway.media.twilio import Mark, Media

logger = logging.getLogger(__name__)

TONE_HZ = 1000.0
TONE_SECONDS = 1.0
MARK = "voicegw-probe"
#: A frame holds the tone if this share of its energy is at the tone's frequency.
TONE_SHARE = 0.5
#: Enough of the tone heard to call the form working.
HEARD_ENOUGH = 0.95
#: How long before the recorded end of its audio a mark may come back and still count as
#: played: the recording's start is known only to the reply of ``record start`` (a loaded
#: switch starts writing a frame or a few later). A mark that does not wait for its audio
#: at all comes back about the tone's length early.
MARK_EARLY_TOLERANCE = 0.2
PROBE_EVENTS = "CHANNEL_ANSWER CHANNEL_HANGUP PLAYBACK_STOP CHANNEL_EXECUTE_COMPLETE CUSTOM mod_audio_stream::play " \
               "mod_audio_stream::connect mod_audio_stream::error mod_audio_stream::json"


class ToneBot:
    """A bot in-process: on start, a tone at once then a mark; records the mark's echo."""

    kind = "probe"
    label = "tone probe"

    def __init__(self, seconds: float = TONE_SECONDS, freq: float = TONE_HZ) -> None:
        self.audio = codec.l16_to_ulaw(codec.tone(seconds, freq, amplitude=8000))
        self.sent_at: float | None = None
        self.mark_echoed_at: float | None = None
        self.echoed = Flag()

    def start(self, on_event) -> None:
        self.sent_at = time.monotonic()
        on_event(Media(self.audio))
        on_event(Mark(MARK))

    def mark_played(self, name: str) -> None:
        if name == MARK and self.mark_echoed_at is None:
            self.mark_echoed_at = time.monotonic()
            self.echoed.set()

    def send_audio(self, ulaw: bytes) -> None:
        pass  # what the caller says does not matter here

    def send_dtmf(self, digit: str) -> None:
        pass

    def close(self, stop: bool = True) -> None:
        pass


@dataclass(frozen=True)
class ProbeResult:
    form: str
    heard: float  # fraction of the tone's frames heard
    first_audio_ms: float | None  # from the bot's audio to the first frame heard
    longest_gap_ms: float  # the longest hole between the first and the last frame heard
    mark_echoed: bool
    mark_before_audio: bool  # the mark came back before its audio had been heard
    problem: str | None = None  # the probe itself could not run

    @property
    def ok(self) -> bool:
        return self.problem is None and self.heard >= HEARD_ENOUGH and self.mark_echoed and not self.mark_before_audio

    def summary(self) -> str:
        if self.problem:
            return self.problem
        first = f"{self.first_audio_ms:.0f} ms" if self.first_audio_ms is not None else "never"
        text = (f"{self.form} form: {self.heard:.0%} of a 1 s tone heard, first audio {first}, "
                f"longest hole {self.longest_gap_ms:.0f} ms, mark {'echoed' if self.mark_echoed else 'not echoed'}")
        if self.ok:
            return text
        return f"{text}. {self.advice()}"

    def advice(self) -> str:
        if self.mark_before_audio and self.heard >= HEARD_ENOUGH:
            return ("The mark came back before its audio had played: a bot's marks would not tell it what the "
                    "caller heard (this node's mod_audio_stream echoes marks at once?).")
        if self.form == "stream":
            if self.heard < 0.05:
                return ("Nothing heard in the stream form: this node's mod_audio_stream cannot stream (the "
                        "community build plays nothing but files), or the channel lacks send_silence_when_idle=-1 "
                        "before its park. Install the bidirectional build (docs/deploy.md), or play this node "
                        "with files: GATEWAY_MEDIA_PLAYBACK=<node>=files.")
            return ("The stream form plays with holes: check the node's CPU and the bridge's network path, or "
                    "play this node with files (GATEWAY_MEDIA_PLAYBACK=<node>=files).")
        if self.heard < 0.05:
            return ("Nothing heard in the files form: FreeSWITCH could not play the module's files (is "
                    "mod_sndfile loaded? does mod_audio_stream write where FreeSWITCH can read?).")
        return "The files form plays with holes: the node is slow to queue playbacks (CPU, ESL latency)."


def analyse(pcm: bytes, rate: int, *, recorded_at: float, sent_at: float, mark_at: float | None,
            freq: float = TONE_HZ, tone_seconds: float = TONE_SECONDS) -> tuple[float, float | None, float, bool]:
    """(fraction heard, first audio ms, longest gap ms, mark before audio) of a recording
    that started at ``recorded_at`` (monotonic), for a tone sent at ``sent_at``."""
    samples = np.frombuffer(pcm[: len(pcm) // 2 * 2], dtype="<i2").astype(np.float64)
    frame = rate // 50
    count = len(samples) // frame
    if count == 0:
        return 0.0, None, 0.0, mark_at is not None
    frames = samples[: count * frame].reshape(count, frame)
    spectrum = np.abs(np.fft.rfft(frames, axis=1)) ** 2
    bin_hz = rate / frame
    near = np.abs(np.arange(spectrum.shape[1]) * bin_hz - freq) <= bin_hz
    total = spectrum[:, 1:].sum(axis=1)
    loud = total > (frame * 300.0) ** 2  # well above a quiet line
    tone = loud & (spectrum[:, near].sum(axis=1) >= TONE_SHARE * np.maximum(total, 1e-9))
    heard = np.flatnonzero(tone)
    expected = int(round(tone_seconds * 50))
    if heard.size == 0:
        return 0.0, None, 0.0, mark_at is not None
    fraction = min(1.0, heard.size / expected)
    first_at = recorded_at + heard[0] / 50
    gaps = np.diff(heard) - 1
    longest = float(gaps.max()) * 20.0 if gaps.size else 0.0
    last_end = recorded_at + (heard[-1] + 1) / 50
    mark_early = mark_at is not None and mark_at < last_end - MARK_EARLY_TOLERANCE
    return fraction, max(0.0, (first_at - sent_at) * 1000.0), longest, mark_early


class _Control:
    """The files form's commands, on the probe's own ESL link."""

    def __init__(self, link: ESLLink) -> None:
        self.link = link

    def play(self, call_uuid: str, path: str) -> None:
        self.link.sendmsg(call_uuid, commands.execute("playback", path))

    def break_playback(self, call_uuid: str) -> None:
        self.link.api(commands.break_playback(call_uuid))


def probe(host: str, port: int, password: str, bridge: MediaBridge, form: str, media_dir: Path, *,
          timeout: float = 10.0) -> ProbeResult:
    """Play the tone through ``form`` on the node at ``host:port``; see the module docstring."""
    a_uuid = str(uuidlib.uuid4())
    streams: dict[str, object] = {}

    def on_event(event) -> None:
        stream = streams.get(event.unique_id or "")
        if stream is not None:
            stream.on_esl_event(event)

    link = ESLLink(host, port, password, on_event=on_event, timeout=timeout)
    recording = Path(media_dir) / "probe" / f"{a_uuid}.wav"
    stream = None
    try:
        try:
            link.connect()
            link.command(commands.subscribe(PROBE_EVENTS))
        except Exception as exc:
            return _failed(form, f"ESL {host}:{port}: {exc or type(exc).__name__}")
        bot = ToneBot()
        stream = bridge.open(a_uuid, form=form, control=_Control(link))
        streams[a_uuid] = stream
        command = originate_command(a_uuid, f"loopback/{names.PROBE_DESTINATION}/{names.PROBE_CONTEXT}",
                                    "0000000000", "voicegw probe", timeout=int(timeout))
        try:
            link.api(command, timeout=timeout + 2)
            b_uuid = link.api(commands.getvar(a_uuid, "other_loopback_leg_uuid")).strip()
            os.makedirs(recording.parent, exist_ok=True)
            link.api(commands.record(b_uuid, "start", str(recording)))
            recorded_at = time.monotonic()
            link.api(commands.audio_stream_start(a_uuid, bridge.url_for(stream), "mono", "8k"))
        except CommandFailed as exc:
            return _failed(form, f"the probe call failed: {exc.reply.strip()} (is the gateway_probe "
                                 "context of dialplan/ installed? `reloadxml`)")
        except UnsafeArgument as exc:
            return _failed(form, f"the probe call cannot be set up: {exc}")
        if not stream.fs_connected.wait(5.0):
            return _failed(form, "mod_audio_stream did not connect to the bridge within 5 s "
                                 f"({bridge.base_url} must be reachable from FreeSWITCH)")
        stream.set_bot(bot)
        bot.echoed.wait(TONE_SECONDS + 3.0)
        gevent.sleep(0.3)  # the last frames reach the recording
        try:
            link.api(commands.record(b_uuid, "stop", str(recording)))
        except CommandFailed:
            pass
        try:
            link.api(commands.kill(a_uuid))
        except CommandFailed:
            pass
        pcm, rate = _read_wav(recording)
        if pcm is None:
            return _failed(form, f"FreeSWITCH wrote no recording at {recording} (the media directory must be "
                                 "the same path for FreeSWITCH and the gateway)")
        heard, first, gap, early = analyse(pcm, rate, recorded_at=recorded_at, sent_at=bot.sent_at,
                                           mark_at=bot.mark_echoed_at)
        return ProbeResult(form, heard, first, gap, bot.mark_echoed_at is not None, early)
    finally:
        if stream is not None:
            stream.close()
        link.close()
        try:
            recording.unlink()
        except OSError:
            pass


def _failed(form: str, problem: str) -> ProbeResult:
    return ProbeResult(form, 0.0, None, 0.0, False, False, problem)


def _read_wav(path: Path) -> tuple[bytes | None, int]:
    try:
        with wave.open(str(path), "rb") as wav:
            pcm = wav.readframes(wav.getnframes())
            rate, channels = wav.getframerate(), wav.getnchannels()
    except (OSError, wave.Error, EOFError):
        return None, 0
    if channels == 2:  # mix the two directions
        both = np.frombuffer(pcm, dtype="<i2").reshape(-1, 2).astype(np.int32).sum(axis=1)
        pcm = np.clip(both, -32768, 32767).astype("<i2").tobytes()
    if rate == 16000:
        pcm, rate = codec.resample(pcm, 16000, 8000), 8000
    return pcm, rate

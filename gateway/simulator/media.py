"""How long a playback lasts, what it plays, and the WAV files ``uuid_record`` writes.

* ``tone_stream://`` (FreeSWITCH teletone script): every ``%(on_ms,off_ms,freq…)`` segment
  lasts on+off ms, the script repeats ``loops=N`` / ``L=N`` times (-1 = forever).  Checked
  against midcall_broadcast_tone (``%(500,500,440);loops=3`` = 3 s) and
  midcall_record_start_stop (``%(500,0,440);loops=2`` = 1 s).
* ``silence_stream://N`` lasts N ms (N <= 0 = forever).
* an existing ``.wav`` file lasts what its header says, a raw ``.r8`` / ``.r16`` file its
  samples at 8 / 16 kHz.
* anything else (a path that does not exist here, a URL, ``local_stream://``, a ``say:``)
  lasts ``default`` seconds; ``None`` means "until interrupted".

What a playback plays (``play_pcm``, 8 kHz mono L16, what the far end hears): a mono
16-bit WAV's frames (16 kHz resampled to 8 kHz), the samples of a raw ``.r8`` / ``.r16``
file (mod_audio_stream writes those for ``streamAudio``), a ``tone_stream://`` script's
tones (sines of its frequencies, on/off as scripted), ``silence_stream://`` silence.
Anything else (a file not here, a URL, a stream that never ends) plays nothing known.
"""

from __future__ import annotations

import os
import re
import wave

import numpy as np

from gateway.media import codec

_SEGMENT = re.compile(r"%\(\s*(\d+)\s*,\s*(\d+)")
_TONE = re.compile(r"%\(\s*(\d+)\s*,\s*(\d+)\s*((?:,\s*[\d.]+\s*)*)\)")
RATE = 8000
TONE_AMPLITUDE = 8000
FOREVER = None


def playback_seconds(path: str, default: float) -> float | None:
    spec = path.strip()
    if spec.startswith("{"):
        end = spec.find("}")
        spec = spec[end + 1:] if end >= 0 else spec
    lower = spec.lower()
    if lower.startswith("tone_stream://"):
        return tone_seconds(spec[len("tone_stream://"):])
    if lower.startswith("local_stream://"):
        return FOREVER
    if lower.startswith("silence_stream://"):
        arg = spec[len("silence_stream://"):].split(",")[0].strip()
        try:
            ms = int(arg)
        except ValueError:
            return default
        return FOREVER if ms <= 0 else ms / 1000.0
    if lower.endswith(".wav") and os.path.isfile(spec):
        try:
            with wave.open(spec, "rb") as wav:
                rate = wav.getframerate() or 8000
                return wav.getnframes() / rate
        except (wave.Error, OSError, EOFError):
            return default
    if lower.endswith((".r8", ".r16")) and os.path.isfile(spec):
        return os.path.getsize(spec) // 2 / (16000 if lower.endswith(".r16") else 8000)
    return default


def wav_pcm(path: str) -> bytes | None:
    """The audio frames of a WAV file ``playback`` opened (None if it is not one here)."""
    if not path.lower().endswith(".wav") or not os.path.isfile(path):
        return None
    try:
        with wave.open(path, "rb") as wav:
            return wav.readframes(wav.getnframes())
    except (wave.Error, OSError, EOFError):
        return None


def play_pcm(path: str, seconds: float | None) -> bytes | None:
    """The 8 kHz PCM a playback of ``path`` lasting ``seconds`` writes (None: unknown)."""
    spec = path.strip()
    lower = spec.lower()
    if seconds is None:
        return None
    if lower.startswith("tone_stream://"):
        return tone_pcm(spec[len("tone_stream://"):])
    if lower.startswith("silence_stream://"):
        return bytes(2 * int(round(seconds * RATE)))
    if not os.path.isfile(spec):
        return None
    if lower.endswith(".wav"):
        try:
            with wave.open(spec, "rb") as wav:
                if wav.getnchannels() != 1 or wav.getsampwidth() != 2 or wav.getframerate() not in (8000, 16000):
                    return None
                rate, pcm = wav.getframerate(), wav.readframes(wav.getnframes())
        except (wave.Error, OSError, EOFError):
            return None
    elif lower.endswith((".r8", ".r16")):
        rate = 16000 if lower.endswith(".r16") else 8000
        try:
            with open(spec, "rb") as f:
                pcm = f.read()
        except OSError:
            return None
    else:
        return None
    return codec.resample(pcm, 16000, 8000) if rate == 16000 else pcm


def tone_pcm(script: str) -> bytes | None:
    """A ``tone_stream://`` script as PCM: each ``%(on,off,freq…)`` is ``on`` ms of its
    frequencies summed then ``off`` ms of silence, the whole ``loops`` times (None when
    it loops forever)."""
    seconds = tone_seconds(script)
    if seconds is None:
        return None
    pieces = []
    for on, off, freqs in _TONE.findall(script):
        t = np.arange(int(on) * RATE // 1000) / RATE
        sine = np.zeros(len(t))
        hz = [float(f) for f in freqs.replace(" ", "").split(",") if f]
        for f in hz:
            sine += np.sin(2 * np.pi * f * t) / len(hz)
        pieces += [sine * TONE_AMPLITUDE, np.zeros(int(off) * RATE // 1000)]
    once = np.concatenate(pieces) if pieces else np.zeros(0)
    total = int(round(seconds * RATE))
    reps = total // len(once) if len(once) else 0
    return np.rint(np.tile(once, reps)).astype("<i2").tobytes()


def mix(*tracks: bytes) -> bytes:
    """Tracks of 16-bit PCM summed with clipping, as long as the longest."""
    arrays = [np.frombuffer(t, dtype="<i2", count=len(t) // 2).astype(np.int32) for t in tracks]
    out = np.zeros(max((len(a) for a in arrays), default=0), dtype=np.int32)
    for a in arrays:
        out[:len(a)] += a
    return np.clip(out, -32768, 32767).astype("<i2").tobytes()


def tone_seconds(script: str) -> float | None:
    loops = 1
    total_ms = 0
    for part in script.split(";"):
        part = part.strip()
        key, sep, value = part.partition("=")
        if sep and key.strip().lower() in ("loops", "l"):
            try:
                loops = int(value)
            except ValueError:
                loops = 1
            continue
        for on, off in _SEGMENT.findall(part):
            total_ms += int(on) + int(off)
    if loops < 0:
        return FOREVER
    return total_ms * max(loops, 1) / 1000.0


def write_wav(path: str, seconds: float, audio: bytes = b"", rate: int = 8000) -> tuple[int, int]:
    """Write a mono 16-bit WAV of ``seconds`` (the given PCM, padded with silence or cut).
    Returns (file size, samples)."""
    samples = max(0, int(round(seconds * rate)))
    pcm = audio[: samples * 2]
    pcm += b"\x00" * (samples * 2 - len(pcm))
    directory = os.path.dirname(path)
    if directory:
        os.makedirs(directory, exist_ok=True)
    with wave.open(path, "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(rate)
        wav.writeframes(pcm)
    return os.path.getsize(path), samples

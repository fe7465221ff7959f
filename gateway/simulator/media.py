"""How long a playback lasts, and the WAV files ``uuid_record`` writes.

* ``tone_stream://`` (FreeSWITCH teletone script): every ``%(on_ms,off_ms,freq…)`` segment
  lasts on+off ms, the script repeats ``loops=N`` / ``L=N`` times (-1 = forever).  Checked
  against midcall_broadcast_tone (``%(500,500,440);loops=3`` = 3 s) and
  midcall_record_start_stop (``%(500,0,440);loops=2`` = 1 s).
* ``silence_stream://N`` lasts N ms (N <= 0 = forever).
* an existing ``.wav`` file lasts what its header says.
* anything else (a path that does not exist here, a URL, ``local_stream://``, a ``say:``)
  lasts ``default`` seconds; ``None`` means "until interrupted".
"""

from __future__ import annotations

import os
import re
import wave

_SEGMENT = re.compile(r"%\(\s*(\d+)\s*,\s*(\d+)")
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

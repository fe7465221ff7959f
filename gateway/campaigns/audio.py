"""The account audio library: uploads converted to 8 kHz mono 16-bit PCM WAV.

That is FreeSWITCH's native telephone format: ``playback`` of such a file needs no
resampling on an 8 kHz call (PCMU/PCMA), and ``mod_sndfile`` reads it everywhere.

Accepted input: whatever libsndfile reads (``soundfile``): WAV (PCM, float, G.711, ADPCM,
plain or WAVE_FORMAT_EXTENSIBLE), MP3, Ogg (Vorbis, Opus), FLAC, AIFF and the rest; any
sample rate from 4 kHz to 192 kHz; any number of channels (mixed down to mono). A file it
cannot read is refused with libsndfile's reason and, when the first bytes say what the file
is meant to be, that too.

Resampling is libsoxr's (``soxr.resample``, high quality), with its cut-off just under the
lower Nyquist frequency, so a 44.1 kHz clip loses nothing audible on a phone line and gains
no aliasing.
"""
from __future__ import annotations

import io
import logging
import os
import re
import uuid as uuidlib
import wave
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile
import soxr

from gateway.models import AudioClip, PublicRun, SavedCampaign
from gateway.recordings import media_root

logger = logging.getLogger(__name__)

TARGET_RATE = 8000
MAX_UPLOAD_BYTES = 100 * 1024 * 1024
MAX_SECONDS = 600
MIN_RATE, MAX_RATE = 4000, 192000
MAX_NAME_LENGTH = 255
MAX_CHANNELS = 32


class AudioError(ValueError):
    """The upload cannot become a clip; the message says why, for a person."""


@dataclass(frozen=True)
class Decoded:
    samples: np.ndarray  # float64 in [-1, 1], shape (frames, channels)
    rate: int

    @property
    def seconds(self) -> float:
        return len(self.samples) / self.rate


def _looks_like(data: bytes) -> str | None:
    """What the file's first bytes say it is meant to be."""
    if data[:4] == b"RIFF" and data[8:12] == b"WAVE":
        return "WAV"
    if data[:3] == b"ID3" or data[:2] in (b"\xff\xfb", b"\xff\xf3", b"\xff\xf2"):
        return "MP3"
    if data[:4] == b"OggS":
        return "Ogg"
    if data[:4] == b"fLaC":
        return "FLAC"
    return None


def _unreadable(data: bytes, reason: str) -> AudioError:
    """The refusal of a file libsndfile cannot read, with its reason (except the one it gives
    for a damaged MP3 read from memory, about files that do not exist)."""
    kind = _looks_like(data)
    because = "" if reason.startswith("File does not exist") else f" ({reason})"
    if kind is None:
        return AudioError(f"cannot read the audio{because}: send WAV, MP3, Ogg or FLAC")
    return AudioError(f"cannot read the audio{because}: this looks like {kind}, but damaged"
                      f" or in an unsupported {kind} encoding")


def decode(data: bytes) -> Decoded:
    """Decode an audio file into float samples; ``AudioError`` if it cannot become a clip.

    The rate, channel count and length are checked from the header, before the audio is
    decoded."""
    try:
        with soundfile.SoundFile(io.BytesIO(data)) as sound:
            rate, channels = sound.samplerate, sound.channels
            if not 1 <= channels <= MAX_CHANNELS:
                raise AudioError(f"the file has an unusable channel count ({channels})")
            if not MIN_RATE <= rate <= MAX_RATE:
                raise AudioError(f"sample rate {rate} Hz is out of range ({MIN_RATE}-{MAX_RATE} Hz)")
            if sound.frames > MAX_SECONDS * rate:
                raise AudioError(f"the clip is {sound.frames / rate:.0f} s long; the limit is {MAX_SECONDS} s")
            samples = sound.read(dtype="float64", always_2d=True)
    except soundfile.LibsndfileError as exc:
        raise _unreadable(data, exc.error_string.rstrip(".")) from None
    except soundfile.SoundFileError as exc:
        raise _unreadable(data, str(exc).rstrip(".")) from None
    return Decoded(np.clip(np.nan_to_num(samples), -1.0, 1.0), rate)


def resample(mono: np.ndarray, src_rate: int, dst_rate: int = TARGET_RATE) -> np.ndarray:
    """Band-limited resampling of float samples (libsoxr, high quality)."""
    if src_rate == dst_rate or len(mono) == 0:
        return mono.astype(np.float64, copy=True)
    return soxr.resample(mono.astype(np.float64), src_rate, dst_rate, quality="HQ")


def to_telephone_pcm(data: bytes) -> tuple[bytes, float]:
    """An uploaded audio file as 8 kHz mono 16-bit little-endian PCM, and its length in seconds."""
    if len(data) > MAX_UPLOAD_BYTES:
        raise AudioError(f"the file is larger than {MAX_UPLOAD_BYTES // (1024 * 1024)} MB")
    decoded = decode(data)
    if len(decoded.samples) == 0:
        raise AudioError("the file holds no audio")
    if decoded.seconds > MAX_SECONDS:
        raise AudioError(f"the clip is {decoded.seconds:.0f} s long; the limit is {MAX_SECONDS} s")
    mono = decoded.samples.mean(axis=1)
    out = resample(mono, decoded.rate, TARGET_RATE)
    pcm = np.clip(np.rint(out * 32767.0), -32768, 32767).astype("<i2").tobytes()
    return pcm, len(out) / TARGET_RATE


def write_wav(path: Path, pcm: bytes, rate: int = TARGET_RATE) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".part")
    with wave.open(str(partial), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(rate)
        wav.writeframes(pcm)
    os.replace(partial, path)  # FreeSWITCH never sees a half-written clip


def clip_name(name: str | None, filename: str | None) -> str:
    text = (name if name is not None else Path(filename or "clip").stem).strip()
    text = re.sub(r"[\x00-\x1f\x7f]", "", text)
    if not text:
        raise AudioError("the clip needs a name")
    if len(text) > MAX_NAME_LENGTH:
        raise AudioError(f"the clip name is longer than {MAX_NAME_LENGTH} characters")
    return text


def store_clip(account, data: bytes, name: str | None = None, filename: str | None = None,
               root: Path | None = None) -> AudioClip:
    """Convert ``data`` and add it to ``account``'s library; ``AudioError`` if it cannot be."""
    label = clip_name(name, filename)
    pcm, seconds = to_telephone_pcm(data)
    path = (root or media_root()) / "clips" / str(account.id) / f"{uuidlib.uuid4().hex}.wav"
    write_wav(path, pcm)
    try:
        return AudioClip.create(account=account, name=label, path=str(path), duration_ms=int(round(seconds * 1000)),
                                size_bytes=path.stat().st_size,
                                original_name=Path(filename).name[:MAX_NAME_LENGTH] if filename else None)
    except Exception:
        path.unlink(missing_ok=True)
        raise


def delete_clip(clip: AudioClip) -> None:
    """Remove a clip from the library. Campaigns that used it lose their audio. Its file is
    kept if a run played it (a call may be playing it now, and the run records it), else
    deleted."""
    in_use = PublicRun.select().where(PublicRun.audio == clip.id).exists()
    SavedCampaign.update(audio=None).where(SavedCampaign.audio == clip.id).execute()
    clip.delete_instance()
    if not in_use:
        Path(clip.path).unlink(missing_ok=True)


def find_clip(account_id: int, clip_id: int) -> AudioClip | None:
    return AudioClip.get_or_none((AudioClip.id == clip_id) & (AudioClip.account == account_id))

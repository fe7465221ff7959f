"""The account audio library: uploads converted to 8 kHz mono 16-bit PCM WAV.

That is FreeSWITCH's native telephone format: ``playback`` of such a file needs no
resampling on an 8 kHz call (PCMU/PCMA), and ``mod_sndfile`` reads it everywhere.

Accepted input: RIFF/WAVE with PCM (8, 16, 24 or 32 bit), IEEE float (32 or 64 bit),
G.711 mu-law or A-law, plain or WAVE_FORMAT_EXTENSIBLE; any sample rate from 4 kHz to
192 kHz; any number of channels (mixed down to mono). Other formats (MP3, Ogg) are
refused with a message saying how to convert them; decoding them would need a codec
library (PyAV or libsndfile), which nothing else in the gateway needs.

Resampling is a windowed-sinc (Blackman) band-limited interpolation in numpy, with the
cut-off just under the lower Nyquist frequency, so a 44.1 kHz clip loses nothing audible
on a phone line and gains no aliasing.
"""
from __future__ import annotations

import logging
import os
import re
import struct
import uuid as uuidlib
import wave
from dataclasses import dataclass
from math import gcd
from pathlib import Path

import numpy as np

from gateway.media.codec import ulaw_to_l16
from gateway.models import AudioClip, PublicRun, SavedCampaign
from gateway.recordings import media_root

logger = logging.getLogger(__name__)

TARGET_RATE = 8000
MAX_UPLOAD_BYTES = 100 * 1024 * 1024
MAX_SECONDS = 600
MIN_RATE, MAX_RATE = 4000, 192000
MAX_NAME_LENGTH = 255

_PCM, _FLOAT, _ALAW, _MULAW, _EXTENSIBLE = 1, 3, 6, 7, 0xFFFE
_HALF_TAPS = 16  # zero crossings of the sinc on each side, at the output rate's cut-off


class AudioError(ValueError):
    """The upload cannot become a clip; the message says why, for a person."""


@dataclass(frozen=True)
class Decoded:
    samples: np.ndarray  # float64 in [-1, 1], shape (frames, channels)
    rate: int

    @property
    def seconds(self) -> float:
        return len(self.samples) / self.rate


def _alaw_to_float(codes: np.ndarray) -> np.ndarray:
    a = codes.astype(np.int32) ^ 0x55
    sign = np.where(a & 0x80, 1, -1)
    exponent = (a >> 4) & 0x07
    mantissa = a & 0x0F
    magnitude = np.where(exponent == 0, (mantissa << 4) + 8, ((mantissa << 4) + 0x108) << np.maximum(exponent - 1, 0))
    return sign * magnitude / 32768.0


def decode_wav(data: bytes) -> Decoded:
    """Decode a RIFF/WAVE file into float samples; ``AudioError`` if it is not one we read."""
    if len(data) < 12 or data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        kind = "MP3" if data[:3] == b"ID3" or data[:2] in (b"\xff\xfb", b"\xff\xf3", b"\xff\xf2") else (
            "Ogg" if data[:4] == b"OggS" else None)
        hint = f"this looks like {kind}; " if kind else ""
        raise AudioError(f"not a WAV file: {hint}convert it first, e.g. ffmpeg -i clip.mp3 -ar 8000 -ac 1 clip.wav")
    fmt = None
    pcm = None
    offset = 12
    while offset + 8 <= len(data):
        chunk_id = data[offset:offset + 4]
        (size,) = struct.unpack_from("<I", data, offset + 4)
        body = data[offset + 8:offset + 8 + size]  # a streaming writer may leave size too large
        if chunk_id == b"fmt ":
            fmt = body
        elif chunk_id == b"data":
            pcm = body
            if fmt is not None:
                break
        offset += 8 + size + (size & 1)
    if fmt is None or len(fmt) < 16:
        raise AudioError("the WAV file has no format chunk")
    if pcm is None:
        raise AudioError("the WAV file has no audio data")
    tag, channels, rate, _byte_rate, block_align, bits = struct.unpack_from("<HHIIHH", fmt)
    if tag == _EXTENSIBLE and len(fmt) >= 26:
        (tag,) = struct.unpack_from("<H", fmt, 24)  # the first two bytes of the SubFormat GUID
    if channels < 1 or channels > 32:
        raise AudioError(f"the WAV file has an unusable channel count ({channels})")
    if not MIN_RATE <= rate <= MAX_RATE:
        raise AudioError(f"sample rate {rate} Hz is out of range ({MIN_RATE}-{MAX_RATE} Hz)")
    width = block_align // channels if block_align else (bits + 7) // 8
    if width < 1:
        raise AudioError("the WAV file's format chunk is inconsistent")
    frames = len(pcm) // (width * channels)
    raw = pcm[: frames * width * channels]
    if tag == _PCM and width == 1:
        samples = (np.frombuffer(raw, dtype=np.uint8).astype(np.float64) - 128) / 128
    elif tag == _PCM and width == 2:
        samples = np.frombuffer(raw, dtype="<i2") / 32768.0
    elif tag == _PCM and width == 3:
        b = np.frombuffer(raw, dtype=np.uint8).reshape(-1, 3).astype(np.int32)
        value = b[:, 0] | (b[:, 1] << 8) | (b[:, 2] << 16)
        samples = np.where(value & 0x800000, value - (1 << 24), value) / 8388608.0
    elif tag == _PCM and width == 4:
        samples = np.frombuffer(raw, dtype="<i4") / 2147483648.0
    elif tag == _FLOAT and width in (4, 8):
        samples = np.nan_to_num(np.frombuffer(raw, dtype="<f4" if width == 4 else "<f8").astype(np.float64))
    elif tag == _MULAW and width == 1:
        samples = np.frombuffer(ulaw_to_l16(raw), dtype="<i2") / 32768.0
    elif tag == _ALAW and width == 1:
        samples = _alaw_to_float(np.frombuffer(raw, dtype=np.uint8))
    else:
        raise AudioError(f"unsupported WAV encoding (format {tag}, {bits} bit); use PCM, float, mu-law or A-law")
    samples = np.clip(samples, -1.0, 1.0).reshape(-1, channels)
    return Decoded(samples, rate)


def resample(mono: np.ndarray, src_rate: int, dst_rate: int = TARGET_RATE) -> np.ndarray:
    """Band-limited resampling of float samples (windowed sinc, Blackman window).

    Polyphase: with ``dst/src = p/q`` in lowest terms, output ``k`` sits at input position
    ``k*q/p``, so the outputs ``r, r+p, r+2p, …`` share one fractional offset and one set
    of filter weights, and each of their taps is a strided slice of the input."""
    if src_rate == dst_rate or len(mono) == 0:
        return mono.astype(np.float64, copy=True)
    g = gcd(src_rate, dst_rate)
    p, q = dst_rate // g, src_rate // g
    ratio = p / q
    cutoff = min(1.0, ratio) * 0.94  # of the input's Nyquist: a little under the output's
    half = int(np.ceil(_HALF_TAPS / min(1.0, ratio)))  # filter half-width, in input samples
    count = (len(mono) * p) // q
    offsets = np.arange(-half + 1, half + 1)
    padded = np.concatenate((np.zeros(half), mono, np.zeros(2 * half + q + 1)))
    out = np.empty(count)
    for r in range(min(p, count)):
        m = len(range(r, count, p))
        base, rest = divmod(r * q, p)
        distance = rest / p - offsets  # from each tap to the output's position
        window = 0.42 + 0.5 * np.cos(np.pi * distance / half) + 0.08 * np.cos(2 * np.pi * distance / half)
        weights = cutoff * np.sinc(cutoff * distance) * np.where(np.abs(distance) < half, window, 0.0)
        weights /= weights.sum()
        acc = np.zeros(m)
        for weight, offset in zip(weights, offsets):
            first = base + offset + half
            acc += weight * padded[first:first + q * (m - 1) + 1:q]
        out[r::p] = acc
    return out


def to_telephone_pcm(data: bytes) -> tuple[bytes, float]:
    """An uploaded WAV as 8 kHz mono 16-bit little-endian PCM, and its length in seconds."""
    if len(data) > MAX_UPLOAD_BYTES:
        raise AudioError(f"the file is larger than {MAX_UPLOAD_BYTES // (1024 * 1024)} MB")
    decoded = decode_wav(data)
    if len(decoded.samples) == 0:
        raise AudioError("the WAV file holds no audio")
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

"""G.711 mu-law <-> 16-bit linear PCM, and resampling between the telephony and
provider rates (``RESAMPLE_RATES``: 8 kHz, 16 kHz and the ElevenLabs agent rates; libsoxr).

Table-driven with numpy (``audioop`` left the standard library in 3.13): decoding is one
256-entry lookup, encoding one 65,536-entry lookup indexed by the sample's bit pattern,
so a 20 ms frame costs a couple of microseconds.  The tables are built from the G.711
definition (bias 0x84, clip 32635, 8 segments), the same arithmetic as the reference
``g711.c``: ``0xFF`` is silence, ``0x80``/``0x00`` are the positive/negative peaks
(+/-32124).

Audio on the wire: mod_audio_stream sends L16 little-endian (research/freeswitch.md §4.3),
the bot protocol carries mu-law 8 kHz (media-protocols.md §1.2), so everything here takes
and returns little-endian ``bytes``.
"""

from __future__ import annotations

import numpy as np
import soxr

RATE = 8000
FRAME_SECONDS = 0.020
ULAW_FRAME_BYTES = 160  # 20 ms of mu-law at 8 kHz
SILENCE_ULAW = b"\xff" * ULAW_FRAME_BYTES

#: The rates ``Resampler`` converts between: the call's 8 kHz, mod_audio_stream's 16 kHz, and
#: every PCM rate an ElevenLabs agent may speak or listen at (connectors.elevenlabs).
RESAMPLE_RATES = (8000, 16000, 22050, 24000, 44100, 48000)

_BIAS = 0x84
_CLIP = 32635


def l16_frame_bytes(rate: int = RATE, channels: int = 1) -> int:
    """Bytes of one 20 ms L16 frame (mod_audio_stream: 320 at 8 kHz mono, 640 at 16 kHz)."""
    return 2 * rate * channels // 50


def _decode_table() -> np.ndarray:
    code = ~np.arange(256, dtype=np.int32) & 0xFF
    exponent = (code >> 4) & 0x07
    magnitude = (((code & 0x0F) << 3) + _BIAS << exponent) - _BIAS
    return np.where(code & 0x80, -magnitude, magnitude).astype("<i2")


def _encode_table() -> np.ndarray:
    # Index = the sample's 16-bit pattern (uint16 view of the int16), so the lookup
    # needs no offset arithmetic.
    samples = np.arange(65536, dtype=np.uint32).astype(np.uint16).view(np.int16).astype(np.int32)
    sign = np.where(samples < 0, 0x80, 0)
    magnitude = np.minimum(np.abs(samples), _CLIP) + _BIAS
    _, top = np.frexp(magnitude.astype(np.float64))  # magnitude < 2**top, exact for ints
    exponent = top.astype(np.int32) - 8  # highest set bit is 7..14 -> segment 0..7
    mantissa = (magnitude >> (exponent + 3)) & 0x0F
    return (~(sign | (exponent << 4) | mantissa) & 0xFF).astype(np.uint8)


ULAW_TO_L16 = _decode_table()
L16_TO_ULAW = _encode_table()


def ulaw_to_l16(data: bytes) -> bytes:
    """mu-law bytes -> L16 little-endian (twice as long)."""
    return ULAW_TO_L16[np.frombuffer(data, dtype=np.uint8)].tobytes()


def l16_to_ulaw(data: bytes) -> bytes:
    """L16 little-endian -> mu-law (half as long); a trailing odd byte is ignored."""
    usable = len(data) - (len(data) & 1)
    return L16_TO_ULAW[np.frombuffer(data, dtype="<u2", count=usable // 2)].tobytes()


class Resampler:
    """Streaming resampler between two of ``RESAMPLE_RATES``, mono L16 (libsoxr,
    ``soxr.ResampleStream``).

    Each call returns exactly as many samples as its input holds at the output rate (one
    20 ms frame in, one 20 ms frame out), and a stream cut in pieces comes out the same
    as in one piece (no clicks at frame edges).  soxr's streaming engine (its variable-rate
    one, the one that answers every call instead of in bursts of 100 ms and more) holds
    back a few milliseconds of output to filter with; what it owes at the start is paid
    in silence, once, so the audio is delayed by that much (15 ms from 16 to 8 kHz,
    30 ms from 8 to 16 kHz with python-soxr 1.1; bench/codec_latency.py measures it)."""

    def __init__(self, src_rate: int, dst_rate: int) -> None:
        if src_rate not in RESAMPLE_RATES or dst_rate not in RESAMPLE_RATES:
            raise ValueError(f"cannot resample {src_rate} Hz to {dst_rate} Hz (only between {RESAMPLE_RATES})")
        self.src_rate = src_rate
        self.dst_rate = dst_rate
        # float32, not int16: soxr dithers int16 output, so the same input cut otherwise
        # would not come out the same.
        self._stream = (soxr.ResampleStream(src_rate, dst_rate, 1, dtype="float32", vr=True)
                        if src_rate != dst_rate else None)
        self._consumed = 0  # input samples seen
        self._emitted = 0  # output samples returned
        self._pending = np.zeros(0, dtype=np.float32)  # produced by soxr, not returned yet

    def process(self, pcm: bytes) -> bytes:
        if self._stream is None:
            return pcm
        x = np.frombuffer(pcm, dtype="<i2", count=len(pcm) // 2).astype(np.float32)
        self._consumed += len(x)
        due = self._consumed * self.dst_rate // self.src_rate - self._emitted
        ready = np.concatenate((self._pending, self._stream.resample_chunk(x)))
        if len(ready) < due:  # what soxr still holds back: silence in its place
            ready = np.concatenate((np.zeros(due - len(ready), dtype=np.float32), ready))
        self._pending = ready[due:]
        self._emitted += due
        return np.clip(np.rint(ready[:due]), -32768, 32767).astype("<i2").tobytes()


def resample(pcm: bytes, src_rate: int, dst_rate: int) -> bytes:
    """One-shot resampling of a whole buffer: :class:`Resampler` fed it in one piece."""
    return Resampler(src_rate, dst_rate).process(pcm)


def tone(seconds: float, freq: float = 440.0, rate: int = RATE, amplitude: int = 3000) -> bytes:
    """A sine tone as L16 (test signals, the simulator's default caller audio)."""
    t = np.arange(int(round(seconds * rate))) / rate
    return np.rint(amplitude * np.sin(2 * np.pi * freq * t)).astype("<i2").tobytes()


def rms(pcm: bytes) -> float:
    x = np.frombuffer(pcm, dtype="<i2", count=len(pcm) // 2).astype(np.float64)
    return float(np.sqrt(np.mean(x * x))) if len(x) else 0.0

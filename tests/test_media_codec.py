"""G.711 mu-law and resampling against known values (ITU-T G.711; the reference g711.c)."""

import numpy as np
import pytest

from gateway.media import codec


def reference_linear2ulaw(sample: int) -> int:
    """The reference encoder, written out sample by sample (Sun Microsystems' g711.c)."""
    bias, clip = 0x84, 32635
    sign = 0x80 if sample < 0 else 0
    magnitude = min(-sample if sample < 0 else sample, clip) + bias
    exponent = 7
    for exp, limit in enumerate((0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF, 0x1FFF, 0x3FFF, 0x7FFF)):
        if magnitude <= limit:
            exponent = exp
            break
    mantissa = (magnitude >> (exponent + 3)) & 0x0F
    return ~(sign | (exponent << 4) | mantissa) & 0xFF


def test_decode_known_values():
    table = codec.ULAW_TO_L16
    assert [int(table[c]) for c in (0xFF, 0x7F, 0x80, 0x00)] == [0, 0, 32124, -32124]
    # the mu-law digital milliwatt (G.711 table 5): a 1 kHz sine at 0 dBm0
    dmw = bytes([0x1E, 0x0B, 0x0B, 0x1E, 0x9E, 0x8B, 0x8B, 0x9E])
    assert np.frombuffer(codec.ulaw_to_l16(dmw), "<i2").tolist() == [-8828, -20860, -20860, -8828,
                                                                     8828, 20860, 20860, 8828]


def test_encode_matches_the_reference_for_every_sample():
    samples = np.arange(-32768, 32768, dtype=np.int32)
    ours = np.frombuffer(codec.l16_to_ulaw(samples.astype("<i2").tobytes()), np.uint8)
    sample_points = list(range(-32768, 32768, 97)) + [-32768, -1, 0, 1, 32767, 31, -31, 32, -33]
    for s in sample_points:
        assert ours[s + 32768] == reference_linear2ulaw(s), s
    assert codec.l16_to_ulaw(np.array([0, -1, 32767, -32768], "<i2").tobytes()) == b"\xff\x7f\x80\x00"


def test_round_trips():
    codes = bytes(range(256))
    back = codec.l16_to_ulaw(codec.ulaw_to_l16(codes))
    assert [c for c in range(256) if back[c] != c] == [0x7F]  # -0 encodes as +0 (0xFF)
    silence = codec.SILENCE_ULAW
    assert len(silence) == 160 and codec.ulaw_to_l16(silence) == bytes(320)
    assert codec.l16_to_ulaw(b"\x01\x00\x02") == codec.l16_to_ulaw(b"\x01\x00")  # odd byte ignored


def tone_frequency(pcm: bytes, rate: int) -> float:
    x = np.frombuffer(pcm, "<i2").astype(float)
    spectrum = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    return float(np.argmax(spectrum) * rate / len(x))


@pytest.mark.parametrize("src, dst", [(16000, 8000), (8000, 16000), (8000, 44100), (24000, 8000),
                                      (22050, 8000), (8000, 48000)])
def test_resampling_keeps_pitch_and_level(src, dst):
    tone = codec.tone(1.0, 1000, rate=src)
    out = codec.resample(tone, src, dst)
    assert len(out) == len(tone) * dst // src
    assert tone_frequency(out, dst) == pytest.approx(1000, abs=2)
    assert codec.rms(out[400:-400]) == pytest.approx(codec.rms(tone), rel=0.03)


def test_downsampling_removes_what_8khz_cannot_carry():
    high = codec.tone(0.5, 6000, rate=16000)  # above the 4 kHz Nyquist of 8 kHz
    assert codec.rms(codec.resample(high, 16000, 8000)[200:]) < 0.02 * codec.rms(high)


def test_streaming_resampler_equals_one_shot():
    tone = codec.tone(0.5, 700, rate=16000)
    whole = codec.resample(tone, 16000, 8000)
    resampler = codec.Resampler(16000, 8000)
    pieces = b"".join(resampler.process(tone[i:i + 640]) for i in range(0, len(tone), 640))
    assert pieces == whole
    up = codec.Resampler(8000, 16000)
    narrow = codec.tone(0.5, 700)
    assert b"".join(up.process(narrow[i:i + 322]) for i in range(0, len(narrow), 322)) == \
        codec.resample(narrow, 8000, 16000)


def test_frame_sizes_of_mod_audio_stream():
    assert codec.l16_frame_bytes(8000) == 320
    assert codec.l16_frame_bytes(16000) == 640
    assert codec.l16_frame_bytes(8000, 2) == 640
    assert codec.l16_frame_bytes(16000, 2) == 1280
    with pytest.raises(ValueError):
        codec.Resampler(8000, 11025)

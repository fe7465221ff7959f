"""The public calling API's admin commands (audio library, campaigns, rates, wallet, agent
destination) and the clip conversion; on both databases for the commands."""
from __future__ import annotations

import argparse
import io
import json
import re
import struct
import wave
from decimal import Decimal

import numpy as np
import pytest

from gateway import public_cli
import soundfile

from gateway.campaigns.audio import AudioError, decode, resample, to_telephone_pcm
from gateway.models import Account, AudioClip, CallRate, LedgerEntry, SavedCampaign


class Cli:
    def __init__(self, capsys):
        parser = argparse.ArgumentParser(prog="voicegw")
        parser.add_argument("--config")
        public_cli.add_subparsers(parser.add_subparsers(dest="command", required=True))
        self.parser = parser
        self.capsys = capsys

    def __call__(self, *argv, status=0):
        args = self.parser.parse_args(argv)
        result = args.func(args)
        out, err = self.capsys.readouterr()
        assert result == status, (argv, out, err)
        return out if status == 0 else err

    def json(self, *argv):
        return json.loads(self(*argv, "--json"))


@pytest.fixture
def cli(database, database_url, monkeypatch, capsys, tmp_path):
    monkeypatch.setenv("GATEWAY_DATABASE_URL", database_url)
    monkeypatch.setenv("GATEWAY_MEDIA_DIR", str(tmp_path / "media"))
    monkeypatch.delenv("GATEWAY_CONFIG", raising=False)
    return Cli(capsys)


def wav_bytes(samples: np.ndarray, rate: int, width: int = 2, channels: int = 1) -> bytes:
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(width)
        w.setframerate(rate)
        w.writeframes(samples.tobytes())
    return buffer.getvalue()


def riff(tag: int, channels: int, rate: int, bits: int, data: bytes, extensible: bool = False) -> bytes:
    block = channels * bits // 8
    if extensible:
        fmt = struct.pack("<HHIIHHHHI", 0xFFFE, channels, rate, rate * block, block, bits, 22, bits, 0)
        fmt += struct.pack("<H", tag) + b"\x00\x00\x00\x00\x10\x00\x80\x00\x00\xaa\x00\x38\x9b\x71"
    else:
        fmt = struct.pack("<HHIIHH", tag, channels, rate, rate * block, block, bits)
    body = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt + b"data" + struct.pack("<I", len(data)) + data
    return b"RIFF" + struct.pack("<I", len(body)) + body


def tone(rate: int, seconds: float = 0.5, freq: float = 1000.0) -> np.ndarray:
    t = np.arange(int(rate * seconds)) / rate
    return 0.5 * np.sin(2 * np.pi * freq * t)


def rms(pcm: bytes) -> float:
    x = np.frombuffer(pcm, dtype="<i2").astype(float) / 32768
    return float(np.sqrt(np.mean(x[400:-400] ** 2)))


def test_clip_conversion_formats():
    expected = 0.5 / np.sqrt(2)
    x = tone(44100)
    inputs = {
        "pcm16 44.1k stereo": wav_bytes(np.repeat((x * 32767).astype("<i2")[:, None], 2, axis=1), 44100, channels=2),
        "pcm8 8k": wav_bytes(((tone(8000) * 127) + 128).astype(np.uint8), 8000, width=1),
        "pcm24 48k": riff(1, 1, 48000, 24, b"".join(int(v * 8388607).to_bytes(3, "little", signed=True)
                                                     for v in tone(48000, 0.2))),
        "pcm32 16k": wav_bytes((tone(16000) * 2147483647).astype("<i4"), 16000, width=4),
        "float32 22.05k": riff(3, 1, 22050, 32, tone(22050).astype("<f4").tobytes()),
        "extensible float64 32k": riff(3, 1, 32000, 64, tone(32000).astype("<f8").tobytes(), extensible=True),
    }
    for label, data in inputs.items():
        pcm, seconds = to_telephone_pcm(data)
        assert abs(rms(pcm) - expected) < 0.01, label
    # G.711 input: mu-law silence stays silent.
    pcm, seconds = to_telephone_pcm(riff(7, 1, 8000, 8, b"\xff" * 8000))
    assert (seconds, rms(pcm)) == (1.0, 0.0)
    pcm, _ = to_telephone_pcm(riff(6, 1, 8000, 8, b"\xd5" * 8000 + b"\x55" * 8000))  # A-law +8, -8
    assert set(np.frombuffer(pcm, dtype="<i2").tolist()) == {8, -8}
    # Above 4 kHz is filtered out, not aliased.
    high = wav_bytes((tone(44100, freq=5000) * 32767).astype("<i2"), 44100)
    assert rms(to_telephone_pcm(high)[0]) < 0.005
    assert len(resample(np.zeros(0), 44100)) == 0
    bad = [(b"ID3\x03\x00" + b"\x00" * 100, "looks like MP3"), (b"OggS" + b"\x00" * 100, "looks like Ogg"),
           (b"RIFF\x04\x00\x00\x00WAVE", "looks like WAV"),
           (riff(2, 1, 8000, 4, b"\x00" * 100), "unsupported WAV encoding"),
           (riff(1, 1, 1000, 16, b"\x00" * 100), "sample rate 1000 Hz is out of range"),
           (riff(1, 1, 8000, 16, b""), "holds no audio")]
    for data, message in bad:
        with pytest.raises(AudioError, match=message):
            to_telephone_pcm(data)
    assert decode(riff(1, 2, 8000, 16, b"\x01\x00\x02\x00" * 10)).samples.shape == (10, 2)


def encoded(format: str, samples: np.ndarray, rate: int, **options) -> bytes:
    buffer = io.BytesIO()
    soundfile.write(buffer, samples, rate, format=format, **options)
    return buffer.getvalue()


@pytest.mark.parametrize(("label", "format", "options"), [
    ("MP3", "MP3", {}), ("Ogg Vorbis", "OGG", {"subtype": "VORBIS"}), ("Ogg Opus", "OGG", {"subtype": "OPUS"}),
    ("FLAC", "FLAC", {}),
])
def test_compressed_uploads_become_8khz_mono(label, format, options):
    rate = 48000
    stereo = np.repeat(tone(rate, seconds=1.0)[:, None], 2, axis=1)
    data = encoded(format, stereo, rate, **options)

    pcm, seconds = to_telephone_pcm(data)

    assert abs(seconds - 1.0) < 0.08, label  # lossy codecs pad a frame or two
    assert len(pcm) == 2 * round(seconds * 8000)
    assert abs(rms(pcm) - 0.5 / np.sqrt(2)) < 0.02, label


@pytest.mark.parametrize(("data", "message"), [
    (b"fLaC" + b"\x00" * 200, "looks like FLAC"),
    (b"OggS\x00\x02" + b"\x17" * 200, "looks like Ogg"),
    (b"\xff\xfb\x90\x00" + b"\x00" * 400, "MP3"),
    (b"%PDF-1.7 not audio at all", "send WAV, MP3, Ogg or FLAC"),
    (b"", "send WAV, MP3, Ogg or FLAC"),
])
def test_corrupt_or_unsupported_uploads_are_refused_with_the_reason(data, message):
    with pytest.raises(AudioError, match=message) as refused:
        to_telephone_pcm(data)
    assert "cannot read the audio" in str(refused.value) or "holds no audio" in str(refused.value)


def test_a_truncated_mp3_keeps_what_was_whole_or_is_refused():
    whole = encoded("MP3", tone(44100, seconds=1.0), 44100)
    try:
        pcm, seconds = to_telephone_pcm(whole[: len(whole) // 2])
    except AudioError as exc:
        assert "looks like MP3" in str(exc)
    else:
        assert 0.2 < seconds < 0.8


def test_audio_campaign_rate_wallet_commands(cli, tmp_path, database):
    account = Account.create(name="acme-india", region="IN", timezone="Asia/Kolkata", currency="INR",
                             balance=Decimal("0"))
    source = tmp_path / "promo.wav"
    source.write_bytes(wav_bytes((tone(44100, 1.0) * 32767).astype("<i2"), 44100))
    doc = cli.json("audio", "upload", "acme-india", str(source), "--name", "March promo")
    clip = AudioClip.get_by_id(doc["id"])
    assert (doc["name"], doc["duration_ms"], doc["original_name"]) == ("March promo", 1000, "promo.wav")
    with wave.open(clip.path) as w:
        assert (w.getframerate(), w.getnchannels(), w.getsampwidth(), w.getnframes()) == (8000, 1, 2, 8000)
    assert str(tmp_path / "media" / "clips" / str(account.id)) in clip.path
    assert "March promo" in cli("audio", "list", str(account.id))
    not_audio = tmp_path / "song.mp3"
    not_audio.write_bytes(b"ID3\x03" + b"\x00" * 64)
    assert "looks like MP3" in cli("audio", "upload", "acme-india", str(not_audio), status=2)
    assert "cannot read" in cli("audio", "upload", "acme-india", str(tmp_path / "missing.wav"), status=2)

    created = cli.json("campaigns", "create", "acme-india", "Renewal press-1", "--type", "press1",
                       "--audio", str(clip.id), "--dtmf-map", '{"1": "connect_agent", "9": "hangup"}')
    campaign = SavedCampaign.get_by_id(created["id"])
    assert (campaign.type, campaign.audio_id, campaign.dtmf_map) == ("press1", clip.id,
                                                                    {"1": "connect_agent", "9": "hangup"})
    assert "dtmf_map actions must be one of" in cli("campaigns", "create", "acme-india", "x", "--type", "press1",
                                                    "--dtmf-map", '{"1": "dance"}', status=2)
    assert "only press1 campaigns take a dtmf map" in cli("campaigns", "create", "acme-india", "x", "--type",
                                                          "audio_blast", "--dtmf-map", '{"1": "hangup"}', status=2)
    cli("campaigns", "set", str(campaign.id), "--status", "paused", "--audio", "")
    campaign = SavedCampaign.get_by_id(campaign.id)
    assert (campaign.status, campaign.audio_id) == ("paused", None)
    assert "Renewal press-1" in cli("campaigns", "list", "acme-india")

    cli("rates", "set", "acme-india", "+91", "1.20")
    cli("rates", "set", "acme-india", "9198", "0.60", "--pulse", "1")
    cli("rates", "set", "acme-india", "+91", "1.10")
    assert [(r.prefix, r.per_minute, r.pulse_sec) for r in CallRate.select().order_by(CallRate.prefix)] == [
        ("+91", Decimal("1.1000"), 60), ("+9198", Decimal("0.6000"), 1)]
    assert "is invalid" in cli("rates", "set", "acme-india", "+9x", "1", status=2)
    cli("rates", "remove", "acme-india", "9198")
    assert CallRate.select().count() == 1

    cli("wallet", "credit", "acme-india", "1842.50", "--note", "NEFT 7781")
    cli("wallet", "adjust", "acme-india", "-0.5")
    assert "is negative" in cli("wallet", "credit", "acme-india", "-3", status=2)
    assert "must be a positive amount" in cli("wallet", "credit", "acme-india", "0", status=2)
    shown = cli.json("wallet", "show", "acme-india")
    assert shown["balance"] == "1842.0000"
    assert [(e["kind"], e["amount"], e["balance_after"]) for e in shown["entries"]] == [
        ("adjustment", "-0.5000", "1842.0000"), ("credit", "1842.5000", "1842.5000")]
    assert LedgerEntry.select().count() == 2

    assert "not one of the account's transfer SIP domains" in cli(
        "agent-destination", "set", "acme-india", "sip:desk@pbx.example.com", status=2)
    Account.update(transfer_sip_domains=["pbx.example.com"]).where(Account.id == account.id).execute()
    cli("agent-destination", "set", "acme-india", "sip:desk@pbx.example.com")
    assert Account.get_by_id(account.id).agent_destination == "sip:desk@pbx.example.com"
    assert "is not a phone number" in cli("agent-destination", "set", "acme-india", "1 2", status=2)
    cli("agent-destination", "set", "acme-india", "098123 45678")  # a number in the account's region
    assert Account.get_by_id(account.id).agent_destination == "+919812345678"
    cli("agent-destination", "set", "acme-india", "")
    assert Account.get_by_id(account.id).agent_destination is None

    cli("audio", "delete", "acme-india", str(clip.id))
    assert AudioClip.select().count() == 0

"""What the far end of a simulated channel hears (``channel.heard``), against the facts
measured on a real FreeSWITCH 1.10.12 (research/downlink.md): queued ``sendmsg``
playbacks back to back, ``uuid_broadcast``'s lead frames, ``uuid_break``, the two
mod_audio_stream builds (the bidirectional fork plays BINARY audio only on frames the
channel writes), and recordings holding what was heard.  Real ESL and WebSocket sockets
on 127.0.0.1; waits are on events, with timeouts.  Timing bounds here are the model's
(load-independent: it runs on a nominal clock) or generous lower bounds; the measured
figures belong in bench/."""

from __future__ import annotations

import argparse
import base64
import json
import time
import wave

import gevent
import numpy as np
import pytest

from gateway.media import codec
from gateway.simulator import Simulator
from gateway.simulator.audio_stream import PLAYOUT_BUFFER_BYTES, module
from gateway.simulator.cli import add_subparser, make_simulator
from gateway.simulator.heard import FRAME, FrameClock, Heard
from gateway.simulator.media import mix
from media_support import WsServer
from sim_support import CAPTURES, RawClient

CHUNK = 1600  # samples: 200 ms at 8 kHz


def ramp(samples: int, first: int = 1000) -> bytes:
    """A distinctive signal: consecutive sample values (no zero), so content is compared
    sample for sample, not only by length."""
    return ((np.arange(samples) + first) % 30000 + 1).astype("<i2").tobytes()


def write_wav(path, pcm: bytes, rate: int = 8000) -> str:
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(rate)
        wav.writeframes(pcm)
    return str(path)


def read_wav(path) -> bytes:
    with wave.open(str(path), "rb") as wav:
        return wav.readframes(wav.getnframes())


@pytest.fixture
def sim():
    simulator = Simulator(port=0, answer_delay=0.02, heartbeat_interval=0)
    simulator.start()
    yield simulator
    simulator.stop()


@pytest.fixture
def esl(sim):
    c = RawClient(sim.port)
    c.auth()
    c.command("event plain ALL")
    yield c
    c.close()


@pytest.fixture
def server():
    srv = WsServer()
    yield srv
    srv.stop()


def parked(esl, sim, variables: str = "") -> str:
    """An answered outbound call, parked; ``variables`` are originate variables."""
    prefix = "{" + variables + "}" if variables else ""
    uuid = esl.api(f"originate {prefix}sofia/gateway/carrier/15551230001 &park()").split()[1]
    esl.wait_event("CHANNEL_PARK", uuid)
    return uuid


def chunks(tmp_path, count: int) -> tuple[list[str], bytes]:
    """``count`` WAV files of 200 ms cut from one ramp, and the whole ramp."""
    whole = ramp(count * CHUNK)
    paths = [write_wav(tmp_path / f"chunk{i}.wav", whole[2 * CHUNK * i:2 * CHUNK * (i + 1)]) for i in range(count)]
    return paths, whole


def on_frame(ch, t: float) -> bool:
    return ch.frames.next(t) == pytest.approx(t, abs=1e-6)


def fired(sim, name: str) -> list[tuple[float, str]]:
    """``time.monotonic()`` and uuid of each ``name`` event the simulator fires from now on."""
    times: list[tuple[float, str]] = []
    sim.core.observers.append(lambda event, uuid: times.append((time.monotonic(), uuid)) if event == name else None)
    return times


def sendmsg_playback(esl, uuid: str, *paths: str) -> None:
    """Queue a playback of each path (sent in one go, then the replies read: they arrive
    together however loaded the machine is)."""
    for path in paths:
        esl.send(f"sendmsg {uuid}", {"call-command": "execute", "execute-app-name": "playback",
                                     "execute-app-arg": path, "event-lock": "true"})
    assert [esl.reply().reply_text for _ in paths] == ["+OK"] * len(paths)


def broadcast(esl, uuid: str, *paths: str) -> None:
    for path in paths:
        esl.send(f"api uuid_broadcast {uuid} {path} aleg")
    assert [esl.reply().text for _ in paths] == ["+OK Message sent\n"] * len(paths)


# -- Heard -------------------------------------------------------------------------------------

def test_heard_places_replaces_cuts_and_analyses():
    heard = Heard()
    assert (heard.samples(), heard.end(), heard.first_after(0), heard.intervals()) == (0, None, None, [])
    a, b = ramp(800, 1), ramp(800, 5000)  # 100 ms each
    heard.write(10.0, a)
    heard.write(10.1, b)  # adjacent: one interval
    heard.write(10.5, a)
    assert heard.intervals() == [(10.0, pytest.approx(10.2)), (10.5, pytest.approx(10.6))]
    assert heard.gaps() == [pytest.approx(0.3)] and heard.gaps(0.31) == []
    assert heard.samples() == 2400 and heard.end() == pytest.approx(10.6)
    assert heard.first_after(9.0) == 10.0 and heard.first_after(10.05) == 10.05
    assert heard.first_after(10.3) == 10.5 and heard.first_after(10.6) is None
    window = heard.between(9.9, 10.6)  # silence, a, b, silence, a
    assert window == bytes(1600) + a + b + bytes(4800) + a
    # a later write replaces the overlap, splitting what it lands in
    heard.write(10.05, ramp(400, 20000))
    assert heard.between(10.0, 10.2) == a[:800] + ramp(400, 20000) + b
    assert [start for start, _ in heard] == [10.0, 10.05, pytest.approx(10.1), 10.5]
    assert heard[0] == (10.0, a[:800]) and len(heard) == 4
    heard.cut(10.15)
    assert heard.end() == pytest.approx(10.15) and heard.samples() == 400 + 400 + 400
    assert heard.segments[-1] == (pytest.approx(10.1), b[:800])
    heard.cut(0)
    assert len(heard) == 0


def test_frame_clock_and_mix():
    clock = FrameClock(100.0)
    assert clock.next(99.0) == 100.0 and clock.next(100.0) == 100.0
    assert clock.next(100.001) == pytest.approx(100.02) and clock.next(100.04) == pytest.approx(100.04)
    loud = (np.full(4, 30000)).astype("<i2").tobytes()
    assert np.frombuffer(mix(loud, loud[:4]), "<i2").tolist() == [32767, 32767, 30000, 30000]


# -- playback timing -----------------------------------------------------------------------------

def test_queued_sendmsg_playbacks_play_back_to_back(esl, sim, tmp_path):
    """downlink.md §2: files queued ahead with sendmsg play with no gap (100 % heard)."""
    uuid = parked(esl, sim)
    paths, whole = chunks(tmp_path, 10)
    sendmsg_playback(esl, uuid, *paths)
    esl.wait_event("PLAYBACK_STOP", uuid, count=10)
    heard = sim.channels[uuid].heard
    assert heard.gaps() == []
    assert heard.samples() >= 0.999 * 10 * CHUNK
    first = heard.first_after(0)
    assert heard.between(first, first + 2.0) == whole
    assert on_frame(sim.channels[uuid], first)


def test_broadcast_chunks_have_lead_frame_holes(esl, sim, tmp_path):
    """downlink.md §2: every uuid_broadcast waits 5 lead frames: ~100-120 ms holes between
    chunks, and PLAYBACK_START ~200 ms after the command."""
    uuid = parked(esl, sim)
    paths, whole = chunks(tmp_path, 10)
    starts = fired(sim, "PLAYBACK_START")
    sent = time.monotonic()
    broadcast(esl, uuid, *paths)
    esl.wait_event("PLAYBACK_STOP", uuid, count=10, timeout=10)
    heard = sim.channels[uuid].heard
    holes = heard.gaps()
    assert len(holes) == 9 and all(0.09 <= h <= 0.13 for h in holes)
    assert [pcm for _, pcm in heard] == [whole[2 * CHUNK * i:2 * CHUNK * (i + 1)] for i in range(10)]
    assert heard.first_after(0) - sent >= 5 * FRAME
    assert starts[0][1] == uuid and starts[0][0] - sent >= 0.19


def test_break_all_silences_the_chain_at_once(esl, sim, tmp_path):
    """``uuid_break <uuid> all`` stops the current file and drops the queued ones: nothing
    is heard after the break (a real switch: silent within 28-38 ms)."""
    uuid = parked(esl, sim)
    paths, _ = chunks(tmp_path, 10)
    sendmsg_playback(esl, uuid, *paths)
    esl.wait_event("PLAYBACK_START", uuid, count=3)
    assert esl.api(f"uuid_break {uuid} all") == "+OK\n"
    broke = time.monotonic()
    assert esl.wait_event("PLAYBACK_STOP", uuid, count=3).get("Playback-Status") == "break"
    ch = sim.channels[uuid]
    assert not ch.session.messages
    assert ch.heard.end() <= broke + FRAME
    assert 2 * CHUNK <= ch.heard.samples() < 3 * CHUNK


@pytest.mark.parametrize("kind", ["wav8", "wav16", "r8", "r16", "tone", "silence", "missing"])
def test_what_a_playback_plays_is_heard(esl, sim, tmp_path, kind):
    uuid = parked(esl, sim)
    signal = ramp(CHUNK)
    expected = {"wav8": signal, "wav16": codec.resample(codec.tone(0.2, 500, rate=16000), 16000, 8000),
                "r8": signal, "r16": codec.resample(codec.tone(0.2, 500, rate=16000), 16000, 8000),
                "silence": bytes(2 * CHUNK), "missing": b""}
    path = {"wav8": lambda: write_wav(tmp_path / "a.wav", signal),
            "wav16": lambda: write_wav(tmp_path / "a.wav", codec.tone(0.2, 500, rate=16000), 16000),
            "r8": lambda: (tmp_path / "a.r8").write_bytes(signal) and str(tmp_path / "a.r8"),
            "r16": lambda: (tmp_path / "a.r16").write_bytes(codec.tone(0.2, 500, rate=16000)) and str(tmp_path / "a.r16"),
            "tone": lambda: "tone_stream://%(100,100,440)",
            "silence": lambda: "silence_stream://200",
            "missing": lambda: str(tmp_path / "nowhere.wav")}[kind]()
    sendmsg_playback(esl, uuid, path)
    esl.wait_event("PLAYBACK_STOP", uuid)
    heard = b"".join(pcm for _, pcm in sim.channels[uuid].heard)
    if kind == "tone":  # 100 ms of a 440 Hz sine, then 100 ms of silence
        assert len(heard) == 2 * CHUNK and heard[CHUNK:] == bytes(CHUNK)
        assert codec.rms(heard[:CHUNK]) > 1000
    else:
        assert heard == expected[kind]


# -- mod_audio_stream builds ---------------------------------------------------------------------

def open_stream(esl, sim, server, uuid: str, rate: str = "8k"):
    assert esl.api(f"uuid_audio_stream {uuid} start {server.url()} mono {rate}") == "+OK Success\n"
    esl.wait_event("CUSTOM", uuid, Event_Subclass="mod_audio_stream::connect")
    peer = server.wait_for(lambda: server.peers and server.peers[-1], 5, "connection")
    return peer, module(sim).streams[uuid]


def received(sim, stream, count: int) -> float:
    """Wait until the simulator read ``count`` BINARY bytes; returns when it saw them."""
    sim.wait_for(lambda: stream.received_bytes >= count)
    return time.monotonic()


@pytest.mark.parametrize("rate", ["8k", "16k"])
def test_bidirectional_build_plays_binary_audio_on_silence_frames(esl, sim, server, rate):
    """downlink.md §2: with send_silence_when_idle=-1 set before park, a 1 s burst is heard
    in full, continuous, from the next 20 ms frame."""
    uuid = parked(esl, sim, "send_silence_when_idle=-1")
    peer, stream = open_stream(esl, sim, server, uuid, rate)
    if rate == "8k":
        burst = expected = ramp(8000)
    else:
        burst = codec.tone(1.0, 500, rate=16000)
        expected = codec.resample(burst, 16000, 8000)
    sent = time.monotonic()
    peer.send_bytes(burst)
    seen = received(sim, stream, len(burst))
    ch = sim.channels[uuid]
    first = ch.heard.first_after(0)
    assert sent <= first <= seen + FRAME and on_frame(ch, first)
    assert ch.heard.gaps() == [] and ch.heard.between(first, first + 1.0) == expected
    assert stream.unplayed_bytes == 0 and stream.dropped_bytes == 0


@pytest.mark.parametrize("when", ["never", "after park"])
def test_without_silence_frames_a_parked_channel_hears_nothing(esl, sim, server, when):
    """downlink.md §2: the park loop reads send_silence_when_idle once, when media is ready:
    without it, or set later, a write-replace module plays nothing."""
    uuid = parked(esl, sim)
    if when == "after park":
        assert esl.api(f"uuid_setvar {uuid} send_silence_when_idle -1") == "+OK\n"
    peer, stream = open_stream(esl, sim, server, uuid)
    peer.send_bytes(ramp(8000))
    received(sim, stream, 16000)
    assert len(sim.channels[uuid].heard) == 0 and stream.unplayed_bytes == 16000


def test_media_coming_up_while_parked_reads_the_variable(esl, sim, server):
    """Parked unanswered, the variable set, then the stream's start pre-answers the
    channel: media became ready while parked, so the park loop reads it then."""
    uuid = sim.inject_inbound("15550001111", "15557654321")
    esl.wait_event("CHANNEL_PARK", uuid)
    assert not sim.channels[uuid].profile.times.progress_media
    esl.api(f"uuid_setvar {uuid} send_silence_when_idle -1")
    peer, stream = open_stream(esl, sim, server, uuid)
    peer.send_bytes(ramp(8000))
    received(sim, stream, 16000)
    assert sim.channels[uuid].heard.samples() == 8000 and stream.unplayed_bytes == 0


def test_clear_audio_cuts_what_was_queued(esl, sim, server):
    uuid = parked(esl, sim, "send_silence_when_idle=-1")
    peer, stream = open_stream(esl, sim, server, uuid)
    queued = ramp(10 * 8000)  # 10 s, sent at once
    peer.send_bytes(queued)
    received(sim, stream, len(queued))
    ch = sim.channels[uuid]
    gevent.sleep(max(0.0, ch.heard.first_after(0) + 0.3 - time.monotonic()))  # 300 ms have played
    cleared = time.monotonic()
    peer.send_text('{"type":"clearAudio"}')
    event = esl.wait_event("CUSTOM", uuid, Event_Subclass="mod_audio_stream::json")
    seen = time.monotonic()
    assert event.body == '{"type":"clearAudio"}'
    end = ch.heard.end()
    assert cleared <= end <= seen + FRAME and on_frame(ch, end)
    assert b"".join(pcm for _, pcm in ch.heard) == queued[:2 * ch.heard.samples()]
    assert ch.heard.samples() < 10 * 8000
    peer.send_bytes(ramp(1600, 7))  # what comes after the clear plays again
    received(sim, stream, len(queued) + 3200)
    assert ch.heard[-1][1] == ramp(1600, 7) and ch.heard[-1][0] >= end


def test_the_buffer_holds_640000_bytes(esl, sim, server):
    uuid = parked(esl, sim)  # nothing drains it
    peer, stream = open_stream(esl, sim, server, uuid)
    for _ in range(7):
        peer.send_bytes(ramp(50_000))
    received(sim, stream, 700_000)
    assert PLAYOUT_BUFFER_BYTES == 640_000
    assert stream.unplayed_bytes == 640_000 and stream.dropped_bytes == 60_000


def test_a_playback_carries_the_buffer(esl, sim, server):
    """A channel that writes no silence writes a file's frames while it plays it: the
    buffer plays over them (write-replace), the rest waits."""
    uuid = parked(esl, sim)
    peer, stream = open_stream(esl, sim, server, uuid)
    peer.send_bytes(ramp(8000))
    received(sim, stream, 16000)
    sendmsg_playback(esl, uuid, "silence_stream://500")
    esl.wait_event("PLAYBACK_STOP", uuid)
    ch = sim.channels[uuid]
    assert b"".join(pcm for _, pcm in ch.heard) == ramp(4000) and stream.unplayed_bytes == 8000


def test_community_build_ignores_binary(esl, sim, server):
    module(sim).build = "community"
    uuid = parked(esl, sim, "send_silence_when_idle=-1")
    peer, stream = open_stream(esl, sim, server, uuid)
    peer.send_bytes(ramp(8000))
    peer.send_text('{"type":"clearAudio"}')
    assert esl.wait_event("CUSTOM", uuid, Event_Subclass="mod_audio_stream::json").body == '{"type":"clearAudio"}'
    assert stream.received_bytes == 16000 and len(sim.channels[uuid].heard) == 0
    assert [e.get("Event-Subclass") for e in esl.events if e.name == "CUSTOM"] == [
        "mod_audio_stream::connect", "mod_audio_stream::json"]


# -- recordings ----------------------------------------------------------------------------------

def test_a_recording_of_loopback_leg_b_holds_what_leg_a_played(esl, sim, tmp_path):
    """Leg B of a loopback call reads what leg A writes: its recording holds A's audio,
    with its gaps, on the real time axis."""
    a = "00000000-0000-4000-8000-000000000001"
    assert esl.api(f"originate {{origination_uuid={a}}}loopback/5555/default &park()") == f"+OK {a}\n"
    esl.wait_event("CHANNEL_PARK", a)
    b = esl.api(f"uuid_getvar {a} other_loopback_leg_uuid")
    assert b in sim.channels and sim.channels[b].name == "loopback/5555-b"
    path = tmp_path / "b.wav"
    assert esl.api(f"uuid_record {b} start {path}") == "+OK Success\n"
    paths, whole = chunks(tmp_path, 3)
    sendmsg_playback(esl, a, paths[0], paths[1])
    esl.wait_event("PLAYBACK_STOP", a, count=2)
    esl.api(f"uuid_broadcast {a} {paths[2]} aleg")  # starts after the lead frames: a hole
    esl.wait_event("PLAYBACK_STOP", a, count=3)
    started = sim.channels[b].session.recording["started"]
    assert esl.api(f"uuid_record {b} stop {path}") == "+OK Success\n"
    recorded = read_wav(path)
    heard_a = sim.channels[a].heard
    assert recorded == heard_a.between(started, started + len(recorded) / 16000)
    samples = np.frombuffer(recorded, "<i2")
    at = int(np.flatnonzero(samples)[0])
    hole = int(round(heard_a.gaps()[0] * 8000))
    assert hole >= 5 * 160  # the broadcast's lead frames
    assert recorded[2 * at:2 * (at + 2 * CHUNK)] == whole[:4 * CHUNK]
    assert not samples[at + 2 * CHUNK:at + 2 * CHUNK + hole].any()
    assert recorded[2 * (at + 2 * CHUNK + hole):2 * (at + 3 * CHUNK + hole)] == whole[4 * CHUNK:]
    assert not samples[:at].any()


def test_a_recording_mixes_what_the_channel_reads_and_writes(esl, sim, tmp_path):
    uuid = parked(esl, sim)
    caller = (np.full(8000 * 5, 100)).astype("<i2").tobytes()
    sim.set_caller_audio(uuid, caller)
    path = tmp_path / "a.wav"
    esl.api(f"uuid_record {uuid} start {path}")
    started = sim.channels[uuid].session.recording["started"]
    paths, whole = chunks(tmp_path, 1)
    sendmsg_playback(esl, uuid, paths[0])
    esl.wait_event("PLAYBACK_STOP", uuid)
    esl.api(f"uuid_record {uuid} stop {path}")
    recorded = np.frombuffer(read_wav(path), "<i2")
    at = int(round((sim.channels[uuid].heard.first_after(0) - started) * 8000))
    assert (recorded[:at] == 100).all()
    assert (recorded[at:at + CHUNK] == np.frombuffer(whole, "<i2") + 100).all()
    assert (recorded[at + CHUNK:] == 100).all()


def test_cli_picks_the_audio_stream_build(capsys):
    parser = argparse.ArgumentParser()
    add_subparser(parser.add_subparsers(dest="command"))
    assert module(make_simulator(parser.parse_args(["simulator"]))).build == "bidirectional"
    args = parser.parse_args(["simulator", "--audio-stream-build", "community"])
    assert module(make_simulator(args)).build == "community"
    with pytest.raises(SystemExit):
        parser.parse_args(["simulator", "--audio-stream-build", "voxcom"])
    assert "invalid choice: 'voxcom'" in capsys.readouterr().err


@pytest.mark.skipif(not (CAPTURES / "gateway_commands.real.json").is_file(), reason="captures not found")
def test_audio_stream_events_have_the_real_headers(esl, sim, server, tmp_path):
    """gateway_commands.real.json: ``streamAudio`` and a plain JSON text sent at once, the
    file broadcast on ``::play``.  The real ``::json`` came before the broadcast ran (its
    lead frames), so it has the headers of ``::play``; a simulator that ran it at once gave
    ``::json`` 3 more (current_loop, total_loops, current_application_data)."""
    real = json.loads((CAPTURES / "gateway_commands.real.json").read_text())
    want = {e["name"]: [h for h in e["order"] if h != "Content-Length"] for e in real["events"]}
    module(sim).temp_dir = str(tmp_path)
    uuid = "9113d749-29de-4c20-9e8e-112bd2ef6ab6"
    esl.command("bgapi originate {origination_uuid=%s,origination_caller_id_number=+12125550100,"
                "origination_caller_id_name='Real FS',originate_timeout=30,ignore_early_media=true}"
                "sofia/gateway/carrier/+14155550100 &park()" % uuid)
    esl.wait_event("CHANNEL_PARK", uuid)
    meta = json.dumps({"call_uuid": uuid, "account_id": "1", "direction": "outbound"}, separators=(",", ":"))
    esl.api(f"uuid_audio_stream {uuid} start {server.url('/stream/' + uuid + '?token=t')} mono 8k {meta}")
    esl.wait_event("CUSTOM", uuid, Event_Subclass="mod_audio_stream::connect")
    peer = server.wait_for(lambda: server.peers and server.peers[-1], 5, "connection")
    wav = open(write_wav(tmp_path / "x.wav", ramp(CHUNK)), "rb").read()
    peer.send_text(json.dumps({"type": "streamAudio", "data": {"audioDataType": "wav", "sampleRate": 8000,
                                                               "audioData": base64.b64encode(wav).decode()}}))
    peer.send_text('{"hello":"not streamAudio"}')
    play = esl.wait_event("CUSTOM", uuid, Event_Subclass="mod_audio_stream::play")
    esl.api(f"uuid_broadcast {uuid} {json.loads(play.body)['file']} aleg")
    for subclass in ("connect", "play", "json"):
        event = esl.wait_event("CUSTOM", uuid, Event_Subclass=f"mod_audio_stream::{subclass}")
        assert event.header_names == want[f"CUSTOM(mod_audio_stream::{subclass})"], subclass

"""``voicegw doctor`` against the simulator running the shipped dialplan."""

from pathlib import Path

import pytest

from gateway import doctor
from gateway.config import HttpAddress, MediaSettings, NodeConfig, Settings
from gateway.models import database_from_url, migrate
from gateway.simulator import Simulator
from gateway.simulator.audio_stream import module

DIALPLAN = Path(__file__).resolve().parents[1] / "dialplan"


@pytest.fixture
def sim():
    simulator = Simulator(port=0, dialplan_dir=str(DIALPLAN))
    simulator.start()
    yield simulator
    simulator.stop()


def settings(sim, url, password="ClueCon", playback="stream", media_dir=None):
    return Settings(database_url=url, http=HttpAddress("127.0.0.1", 0),
                    freeswitch_nodes=(NodeConfig("fs", "127.0.0.1", sim.port, password),),
                    media=MediaSettings(playback=playback), media_dir=media_dir or Path("/tmp/voicegw-doctor-test"))


def run(settings):
    lines = []
    return doctor.run(settings, lines.append), lines


def test_healthy_install_passes_every_check(sim, database_url, tmp_path):
    failed, lines = run(settings(sim, database_url, media_dir=tmp_path))
    assert failed == 0, lines
    assert any("module mod_audio_stream" in line for line in lines)
    assert any("dialplan context gateway_transfer" in line for line in lines)
    [heard] = [line for line in lines if "bot audio (stream form)" in line]
    assert heard.startswith("ok") and "100% of a 1 s tone heard" in heard
    assert lines[-1].endswith("0 failed")
    assert not list(tmp_path.rglob("*.wav"))  # the probe's recording is not left behind


@pytest.mark.parametrize("build, playback, ok", [("community", "stream", False), ("community", "files", True),
                                                 ("bidirectional", "files", True)])
def test_the_playback_probe_tells_whether_a_caller_hears_the_bot(sim, database_url, tmp_path, build, playback, ok):
    """The community build plays nothing in the stream form, yet the bridge's clock would
    echo the marks: only listening tells (research/downlink.md)."""
    module(sim).build = build
    failed, lines = run(settings(sim, database_url, playback=playback, media_dir=tmp_path))
    [heard] = [line for line in lines if f"bot audio ({playback} form)" in line]
    assert heard.startswith("ok" if ok else "FAIL"), heard
    if not ok:
        assert "0% of a 1 s tone heard" in heard and "bidirectional build" in heard and "=files" in heard


def test_each_problem_is_named(sim, tmp_path):
    sim.modules.discard("mod_audio_stream")
    unmigrated = f"sqlite:///{tmp_path / 'empty.sqlite3'}"
    failed, lines = run(settings(sim, unmigrated))
    assert failed == 2
    assert any(line.startswith("FAIL") and "mod_audio_stream" in line for line in lines)
    assert any(line.startswith("FAIL  database") and "voicegw migrate" in line for line in lines)


def test_missing_dialplan_and_wrong_password(tmp_path):
    bare = Simulator(port=0)  # no dialplan loaded: contexts cannot be found
    bare.start()
    try:
        url = f"sqlite:///{tmp_path / 'db.sqlite3'}"
        migrate(database_from_url(url))
        failed, lines = run(settings(bare, url))
        assert failed == 4 and sum("dialplan context" in line for line in lines if line.startswith("FAIL")) == 4
        failed, lines = run(settings(bare, url, password="wrong"))
        assert failed == 1 and "password refused" in lines[0]
    finally:
        bare.stop()


def test_the_probe_catches_a_stream_on_a_channel_without_send_silence_when_idle(sim, database_url, tmp_path,
                                                                               monkeypatch):
    """A bidirectional build has no frames to write into on a parked channel without the
    variable: nothing is heard, and the probe says which variable is missing."""
    from gateway import dialplan_names as names
    monkeypatch.setattr(names, "STREAM_CHANNEL_VARIABLES", {})
    failed, lines = run(settings(sim, database_url, media_dir=tmp_path))
    [heard] = [line for line in lines if "bot audio (stream form)" in line]
    assert heard.startswith("FAIL") and "0% of a 1 s tone heard" in heard and "send_silence_when_idle=-1" in heard


def test_a_mark_counts_as_played_unless_it_came_back_well_before_its_audio():
    """The recording's start is known to the ``record start`` reply only: a mark a few
    frames before the recorded end is played; one that did not wait for the audio is not."""
    from gateway import playback_probe
    from gateway.media import codec

    pcm = codec.tone(1.0, playback_probe.TONE_HZ, amplitude=8000)
    recorded_at, sent_at = 100.0, 100.0
    end = recorded_at + 1.0
    verdict = [playback_probe.analyse(pcm, 8000, recorded_at=recorded_at, sent_at=sent_at, mark_at=at)[3]
               for at in (end, end - 0.1, end - 0.9)]
    assert verdict == [False, False, True]

"""``voicegw doctor`` against the simulator running the shipped dialplan."""

from pathlib import Path

import pytest

from gateway import doctor
from gateway.config import HttpAddress, NodeConfig, Settings
from gateway.models import database_from_url, migrate
from gateway.simulator import Simulator

DIALPLAN = Path(__file__).resolve().parents[1] / "dialplan"


@pytest.fixture
def sim():
    simulator = Simulator(port=0, dialplan_dir=str(DIALPLAN))
    simulator.start()
    yield simulator
    simulator.stop()


def settings(sim, url, password="ClueCon"):
    return Settings(database_url=url, http=HttpAddress("127.0.0.1", 0),
                    freeswitch_nodes=(NodeConfig("fs", "127.0.0.1", sim.port, password),))


def run(settings):
    lines = []
    return doctor.run(settings, lines.append), lines


def test_healthy_install_passes_every_check(sim, database_url):
    failed, lines = run(settings(sim, database_url))
    assert failed == 0, lines
    assert any("module mod_audio_stream" in line for line in lines)
    assert any("dialplan context gateway_transfer" in line for line in lines)
    assert lines[-1].endswith("0 failed")


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
        assert failed == 3 and sum("dialplan context" in line for line in lines if line.startswith("FAIL")) == 3
        failed, lines = run(settings(bare, url, password="wrong"))
        assert failed == 1 and "password refused" in lines[0]
    finally:
        bare.stop()

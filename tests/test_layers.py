"""The layers hold: protocol cores import nothing of the application, models and the domain
import no API, the simulator imports only the protocol cores and the codec, webhooks import
nothing of the calls and OTP nothing of campaigns (the contracts in setup.cfg, checked by
import-linter on the source tree)."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_import_contracts_hold():
    lint = Path(sys.executable).with_name("lint-imports")
    result = subprocess.run([str(lint), "--config", str(ROOT / "setup.cfg"), "--no-cache"], cwd=ROOT,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout

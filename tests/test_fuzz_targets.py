"""The fuzz targets in ``fuzz/`` (atheris), each run briefly as CI runs them: a few
thousand inputs from its seeds, and not one may fail. Longer runs are for people:
``python fuzz/<target>.py -max_total_time=600``."""
import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

FUZZ = Path(__file__).resolve().parents[1] / "fuzz"
RUNS = 4000

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("atheris") is None,
    reason="atheris is not installed: it is in the 'test' extra (pip install -e '.[test]'),"
           " and has no build for this platform if that install skipped it")


@pytest.mark.parametrize("target", ["esl_protocol", "twilio", "ingest"])
def test_the_fuzz_target_survives_a_short_run(target, tmp_path):
    result = subprocess.run(
        [sys.executable, str(FUZZ / f"{target}.py"), f"-runs={RUNS}", f"-artifact_prefix={tmp_path}/"],
        cwd=tmp_path, capture_output=True, text=True, timeout=300)
    crashes = sorted(path.name for path in tmp_path.glob("crash-*"))
    assert result.returncode == 0 and not crashes, (
        f"{target} failed on {crashes} (kept in {tmp_path}; replay: python fuzz/{target}.py <file>)\n"
        + result.stderr[-4000:])
    assert f"Done {RUNS} runs" in result.stderr

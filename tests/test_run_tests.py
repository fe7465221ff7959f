"""``tools/run_tests.py`` (the README's test command): every test file lands in exactly
one batch, the batches are about the same size, and a batch that fails or collects no
test fails the run."""
from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

TOOL = Path(__file__).resolve().parents[1] / "tools" / "run_tests.py"


def _tool():
    spec = importlib.util.spec_from_file_location("run_tests", TOOL)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_every_file_is_in_one_batch_and_the_batches_are_balanced(tmp_path):
    sizes = [900, 500, 400, 300, 300, 200, 100, 100]
    files = []
    for n, size in enumerate(sizes):
        path = tmp_path / f"test_{n}.py"
        path.write_text("#" * size)
        files.append(path)
    batches = _tool().batches_of(files, 3)
    assert sorted(p for batch in batches for p in batch) == sorted(files)
    totals = [sum(p.stat().st_size for p in batch) for batch in batches]
    assert max(totals) - min(totals) <= max(sizes[-3:])  # greedy: within the smallest files' size
    assert len(_tool().batches_of(files[:2], 4)) == 2  # no empty batches
    assert totals == sorted(totals, reverse=True)  # the largest first


def _run(folder: Path, *files: tuple[str, str]):
    folder.mkdir()
    for name, text in files:
        (folder / name).write_text(text)
    return subprocess.run([sys.executable, str(TOOL), "--jobs", "2", "--tests", str(folder), "-q"],
                          capture_output=True, text=True, timeout=120)


def test_a_batch_that_fails_or_collects_nothing_fails_the_run(tmp_path):
    """(The suite's own run through this tool is the passing case.)"""
    failing = _run(tmp_path / "bad", ("test_a.py", "def test_a():\n    pass\n"),
                   ("test_b.py", "def test_b():\n    assert False\n"))
    assert failing.returncode == 1 and "failed" in failing.stdout.splitlines()[-1]

    empty = _run(tmp_path / "empty", ("test_a.py", "def test_a():\n    pass\n"), ("test_b.py", "x = 1\n"))
    assert empty.returncode == 1 and "exit status 5" in empty.stdout  # a batch that collected nothing

"""Run the test suite in several pytest processes at once, each on a batch of test files.

Why not pytest-xdist: its workers wait for work on a queue that an OS thread of execnet
fills, and the gateway's tests run monkey-patched by gevent (``-p gateway._monkey``), so
that wait is a greenlet's and never wakes (``LoopExit``). Separate pytest processes need
nothing of the kind: each has its own PostgreSQL test database (conftest names it at
random), its own SQLite files and temporary folder, and takes its ports from the kernel.

The files are cut into batches (several per process, so that no process is left with
the slow ones), largest first; ``--jobs`` processes run at a time, each starting the next
batch when its own ends. Every batch's output is printed whole once it ends. The exit
status is 0 only if every batch passed: one that failed, or collected nothing (pytest's
5), fails the run.

    python tools/run_tests.py [--jobs N] [--tests DIR] [pytest arguments…]
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
JOBS = (os.cpu_count() or 1) + 1
BATCHES_PER_JOB = 4


def batches_of(files: list[Path], count: int) -> list[list[Path]]:
    """``files`` cut into at most ``count`` batches of about the same total size, the
    largest batches first."""
    batches: list[list[Path]] = [[] for _ in range(min(count, len(files)))]
    sizes = [0] * len(batches)
    for path in sorted(files, key=lambda p: p.stat().st_size, reverse=True):
        smallest = sizes.index(min(sizes))
        batches[smallest].append(path)
        sizes[smallest] += path.stat().st_size
    return [batch for _, batch in sorted(zip(sizes, batches), key=lambda pair: -pair[0])]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=JOBS,
                        help=f"pytest processes at a time (default {JOBS}: the cores and one more, since the"
                             " tests wait on sockets much of the time)")
    parser.add_argument("--tests", type=Path, default=ROOT / "tests", help="the folder of test files (tests/)")
    args, pytest_args = parser.parse_known_args(argv)
    if args.jobs < 1:
        parser.error("--jobs must be at least 1")
    files = sorted(args.tests.resolve().glob("test_*.py"))
    if not files:
        print(f"no test files in {args.tests}", file=sys.stderr)
        return 1
    started = time.monotonic()
    batches = batches_of(files, args.jobs * BATCHES_PER_JOB)
    failed = []
    with tempfile.TemporaryDirectory(prefix="voicegw-tests-") as scratch:
        waiting = list(enumerate(batches, start=1))
        running: list[tuple[int, list[Path], object, subprocess.Popen]] = []
        while waiting or running:
            while waiting and len(running) < args.jobs:
                number, batch = waiting.pop(0)
                log = open(Path(scratch) / f"batch-{number}.log", "w+")
                command = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider",
                           f"--basetemp={Path(scratch) / f'tmp-{number}'}", *pytest_args, *map(str, batch)]
                running.append((number, batch, log, subprocess.Popen(command, cwd=ROOT, stdout=log,
                                                                     stderr=subprocess.STDOUT)))
            time.sleep(0.2)
            for entry in [entry for entry in running if entry[3].poll() is not None]:
                running.remove(entry)
                number, batch, log, process = entry
                log.seek(0)
                print(f"===== batch {number} of {len(batches)}: {len(batch)} files, exit status"
                      f" {process.returncode} =====")
                sys.stdout.write(log.read())
                sys.stdout.flush()
                log.close()
                if process.returncode != 0:
                    failed.append(number)
    elapsed = time.monotonic() - started
    verdict = f"batches {', '.join(map(str, sorted(failed)))} failed" if failed else "every batch passed"
    print(f"===== {verdict} in {elapsed:.0f} s ({len(batches)} batches, {args.jobs} at a time) =====")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

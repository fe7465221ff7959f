"""What the fuzz targets share: their seeds, their dictionary, libFuzzer's command line.

``python fuzz/<target>.py [libFuzzer flags] [CORPUS_DIR ...] [INPUT_FILE ...]``:

* with no corpus directory, the target starts from its seeds (``fuzz/corpus/<target>/``,
  given as ``-seed_inputs``) and writes nothing but crash files; name a directory to
  keep the inputs it finds (libFuzzer writes into the first one);
* a JSON target gets ``fuzz/json.dict`` unless ``-dict=`` is given;
* ``-runs=N`` or ``-max_total_time=S`` bound the run; a failure writes the input as
  ``crash-<sha1>`` (to the current directory, or ``-artifact_prefix=``), and
  ``python fuzz/<target>.py crash-<sha1>`` runs that one input again.
"""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Callable

import atheris

HERE = Path(__file__).resolve().parent


def run(target: str, test_one_input: Callable[[bytes], None], dictionary: str | None = None) -> None:
    """Fuzz ``test_one_input`` with the command line of this process; never returns."""
    argv = list(sys.argv)
    flags = [arg for arg in argv[1:] if arg.startswith("-")]
    paths = [arg for arg in argv[1:] if not arg.startswith("-")]
    if not paths and not any(flag.startswith("-seed_inputs=") for flag in flags):
        seeds = sorted(str(path) for path in (HERE / "corpus" / target).iterdir() if path.is_file())
        argv.append("-seed_inputs=" + ",".join(seeds))
    if dictionary and not any(flag.startswith("-dict=") for flag in flags):
        argv.append(f"-dict={HERE / dictionary}")
    atheris.Setup(argv, test_one_input)
    atheris.Fuzz()

"""A normal install, as ``deploy/provision.sh`` does it: a wheel built from the tree,
installed (not editable) into a fresh virtualenv, run from a folder outside the tree.

An editable install (the README's) finds every module in the source tree, so it hid a
package that ``packages = find:`` left out of the wheel. These tests look at what a
wheel really holds and run the installed ``voicegw`` the way the VM runs it.
"""

from __future__ import annotations

import os
import subprocess
import sys
import venv
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "gateway"


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps",
                    "--quiet", "--wheel-dir", str(out), str(ROOT)],
                   check=True, capture_output=True, timeout=300)
    (built,) = out.glob("voice_gateway-*.whl")
    return built


@pytest.fixture(scope="module")
def installed(wheel, tmp_path_factory) -> Path:
    """A fresh virtualenv with the wheel and its declared dependencies; its ``bin``."""
    env_dir = tmp_path_factory.mktemp("venv")
    venv.EnvBuilder(with_pip=True).create(env_dir)
    bin_dir = env_dir / "bin"
    result = subprocess.run([str(bin_dir / "python"), "-m", "pip", "install", "--quiet",
                             "--disable-pip-version-check", str(wheel)],
                            capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr[-4000:]
    return bin_dir


def source_modules() -> set[str]:
    return {p.relative_to(ROOT).as_posix() for p in PACKAGE.rglob("*.py")}


def test_the_wheel_holds_every_module_of_the_source_tree(wheel):
    with zipfile.ZipFile(wheel) as archive:
        packed = {name for name in archive.namelist() if name.endswith(".py")}
    assert source_modules() - packed == set()


def test_every_source_folder_is_a_package():
    """``find:`` only takes folders with an ``__init__.py``; a folder without one is lost."""
    folders = {p.parent for p in PACKAGE.rglob("*.py")}
    assert sorted(str(f.relative_to(ROOT)) for f in folders if not (f / "__init__.py").exists()) == []


def run_installed(bin_dir: Path, cwd: Path, *args: str, timeout: float = 240) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GATEWAY_", "FREESWITCH_"))}
    env["PYTHONPATH"] = ""
    env["GATEWAY_DATABASE_URL"] = f"sqlite:///{cwd / 'voicegw.sqlite3'}"
    return subprocess.run([str(bin_dir / "voicegw"), *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)


def test_installed_voicegw_runs_help_migrate_and_demo(installed, tmp_path):
    where = subprocess.run([str(installed / "python"), "-c", "import gateway; print(gateway.__file__)"],
                           cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert where.returncode == 0, where.stderr
    assert str(ROOT) not in where.stdout, "the installed package must not come from the source tree"

    helped = run_installed(installed, tmp_path, "--help")
    assert helped.returncode == 0, helped.stderr
    assert "serve" in helped.stdout and "demo" in helped.stdout

    migrated = run_installed(installed, tmp_path, "migrate")
    assert migrated.returncode == 0, migrated.stderr
    assert (tmp_path / "voicegw.sqlite3").exists()

    demo = run_installed(installed, tmp_path, "demo")
    assert demo.returncode == 0, demo.stdout[-3000:] + demo.stderr[-3000:]

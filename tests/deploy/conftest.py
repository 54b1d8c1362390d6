"""Hearth installed as docs/deploy.md installs it, once per test session: the wheel built
from this checkout, installed (not editable) with the locked dependencies in a fresh virtual
environment outside the repository. The wheel test and the rehearsal both run it."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
# What the wheel is not built from: environments, caches, earlier builds, results.
_NOT_BUILT = shutil.ignore_patterns(
    ".git",
    ".venv",
    "node_modules",
    "build",
    "dist",
    "*.egg-info",
    "__pycache__",
    ".mypy_cache",
    ".ruff_cache",
    ".pytest_cache",
    "results",
    "artifacts",
)


def run_checked(*args: str, cwd: Path, env: dict[str, str] | None = None) -> str:
    done = subprocess.run(
        list(args), cwd=cwd, env=env, capture_output=True, text=True, check=False, timeout=600
    )
    assert done.returncode == 0, f"{' '.join(args)} failed:\n{done.stdout}\n{done.stderr}"
    return done.stdout


@pytest.fixture(scope="session")
def installed_hearth(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The virtual environment (its bin/hearth is the server)."""
    folder = tmp_path_factory.mktemp("installed-hearth")
    wheels = folder / "wheels"
    # Built from a copy: setuptools writes build/ and *.egg-info into the source tree, and
    # with the suite on several processes (Makefile) two may build at once.
    source = folder / "source"
    shutil.copytree(REPO, source, ignore=_NOT_BUILT)
    run_checked(
        sys.executable, "-m", "build", "--wheel", "--outdir", str(wheels), str(source), cwd=folder
    )
    (wheel,) = wheels.glob("hearth-*.whl")
    venv = folder / "venv"
    run_checked(sys.executable, "-m", "venv", str(venv), cwd=folder)
    # --no-compile: byte-compiling every dependency up front took about two thirds of the
    # install (68 s against 22 s here); Python compiles what the server imports when it starts.
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", "--no-compile"]
    # As the Dockerfile and docs/deploy.md do: the lock (every pin with its hash), then the
    # wheel alone.
    run_checked(*pip, "--require-hashes", "-r", str(REPO / "requirements.lock"), cwd=folder)
    run_checked(*pip, "--no-deps", str(wheel), cwd=folder)
    return venv

"""A serving process asks for a higher CPU priority, and runs on without it if refused."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PROBE = """
import logging, os, sys
logging.basicConfig(level=logging.INFO, stream=sys.stdout, format="%(message)s")
from server.priority import apply_nice
{drop}
print("runs at", apply_nice(int(sys.argv[1])), "now", os.getpriority(os.PRIO_PROCESS, 0))
"""


def _probe(nice: int, *, drop_privilege: bool = False) -> str:
    drop = "os.setgid(65534); os.setuid(65534)" if drop_privilege else ""
    result = subprocess.run(
        [sys.executable, "-c", PROBE.format(drop=drop), str(nice)],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    return result.stdout


@pytest.mark.skipif(os.geteuid() != 0, reason="raising a priority needs root here")
def test_a_privileged_process_takes_the_priority_asked_for() -> None:
    assert "runs at -7 now -7" in _probe(-7)


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to become an unprivileged user")
def test_without_the_privilege_it_runs_as_started_and_says_why() -> None:
    out = _probe(-7, drop_privilege=True)
    assert "runs at 0 now 0" in out
    assert "not allowed to take -7" in out


def test_a_lower_priority_needs_no_privilege() -> None:
    assert "runs at 3 now 3" in _probe(3)

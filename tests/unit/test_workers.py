"""Which worker process hosts a circle (``hearth serve --workers N``)."""

from __future__ import annotations

import subprocess
import sys
from collections import Counter

import pytest

from server.config import settings_from_env
from server.workers import pick_worker


def test_the_choice_is_stable_and_in_range() -> None:
    ids = [f"circle-{n}" for n in range(400)]
    choices = [pick_worker(i, 3) for i in ids]
    assert choices == [pick_worker(i, 3) for i in ids]
    assert set(choices) == {0, 1, 2}
    # Roughly even: no worker gets far more than its share.
    assert max(Counter(choices).values()) < 400 / 3 * 1.3
    assert {pick_worker(i, 1) for i in ids} == {0}


def test_the_choice_does_not_depend_on_the_process() -> None:
    # Python's hash() of a str changes per process; the front and every worker must agree.
    code = "from server.workers import pick_worker; print(pick_worker('abc-123', 7))"
    other = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert int(other) == pick_worker("abc-123", 7) == 0


def test_no_workers_is_refused() -> None:
    with pytest.raises(ValueError):
        pick_worker("abc", 0)


def test_settings_read_the_worker_count() -> None:
    assert settings_from_env({}).workers == 1
    assert settings_from_env({"HEARTH_WORKERS": "4"}).workers == 4
    with pytest.raises(ValueError):
        settings_from_env({"HEARTH_WORKERS": "0"})

"""Fixtures for the browser tests: a real server, Debian's Chromium, and fake microphones.

Chromium is the distribution's (/usr/bin/chromium); Playwright only drives it and never
downloads a browser. Every address the pages reach is 127.0.0.1.
"""

from __future__ import annotations

import math
import shutil
import wave
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from tests.support.server import REPO_ROOT, ServerProcess

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = REPO_ROOT / "test-artifacts"

SAMPLE_RATE = 48_000


def chromium_args(fake_audio: Path | None = None) -> list[str]:
    args = [
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--autoplay-policy=no-user-gesture-required",
        "--allow-loopback-in-peer-connection",
        "--use-fake-ui-for-media-stream",
        "--use-fake-device-for-media-stream",
    ]
    if fake_audio is not None:
        args.append(f"--use-file-for-fake-audio-capture={fake_audio}")
    return args


def write_gated_tone(
    path: Path,
    frequency: float,
    *,
    seconds: float = 6.0,
    on: float = 1.2,
    off: float = 0.3,
    ramp: float = 0.03,
    amplitude: float = 0.4,
) -> Path:
    """A tone switched on and off like speech, with raised-cosine ramps.

    Hard edges would spread energy over the whole spectrum and make a tone look present at
    frequencies where it is not; the ramps keep it narrow.
    """
    n = int(seconds * SAMPLE_RATE)
    t = np.arange(n) / SAMPLE_RATE
    period = on + off
    phase = np.mod(t, period)
    gate = np.zeros(n)
    gate[phase < on] = 1.0
    rise = phase < ramp
    gate[rise] = 0.5 - 0.5 * np.cos(math.pi * phase[rise] / ramp)
    fall = (phase >= on - ramp) & (phase < on)
    gate[fall] = 0.5 - 0.5 * np.cos(math.pi * (on - phase[fall]) / ramp)
    signal = amplitude * gate * np.sin(2 * math.pi * frequency * t)
    pcm = np.round(signal * 32767).astype("<i2")
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(SAMPLE_RATE)
        out.writeframes(pcm.tobytes())
    return path


@pytest.fixture(scope="session")
def chromium_path() -> Path:
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is not installed")
    return CHROMIUM


@pytest.fixture(scope="session")
def artifacts_dir() -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS


@pytest.fixture(scope="session")
def tones(tmp_path_factory: pytest.TempPathFactory) -> dict[int, Path]:
    folder = tmp_path_factory.mktemp("tones")
    return {hz: write_gated_tone(folder / f"tone-{hz}.wav", hz) for hz in (500, 1300)}


@pytest.fixture(scope="session")
def hearth_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """The real server as a child process (SIGTERM at the end, then kill)."""
    data_dir = Path(tmp_path_factory.mktemp("hearth-browser-data"))
    process = ServerProcess(data_dir=data_dir)
    process.start()
    try:
        yield process
    finally:
        process.stop()
        log = process.log_text()
        if log:
            # Kept next to the screenshots so a failure can be read afterwards.
            ARTIFACTS.mkdir(exist_ok=True)
            (ARTIFACTS / "browser-server.log").write_text(log)
        shutil.rmtree(data_dir, ignore_errors=True)

"""The bench's bots report as browsers do: every 5 s on average on each audio stream (as
libwebrtc), with RFC 3550's spread, in aiortc's sender loop and in the receive hook alike."""

from __future__ import annotations

import statistics

import aiortc.rtcrtpsender
import pytest

from bench.bots import report_like_a_browser
from signaling import voice


def test_the_bots_sender_reports_every_5_s_on_average(monkeypatch: pytest.MonkeyPatch) -> None:
    # The stock module back in aiortc after this test (the bots' process patches it for good).
    monkeypatch.setattr(aiortc.rtcrtpsender, "random", aiortc.rtcrtpsender.random)
    report_like_a_browser(5.0)
    # What aiortc's sender loop sleeps between reports: 0.5 + random.random().
    sleeps = [0.5 + aiortc.rtcrtpsender.random.random() for _ in range(4000)]
    assert min(sleeps) >= 2.5 and max(sleeps) <= 7.5
    assert statistics.mean(sleeps) == pytest.approx(5.0, abs=0.15)


def test_receiver_reports_keep_their_spread_around_any_mean() -> None:
    for mean in (1.0, 5.0):
        sleeps = [voice._rtcp_interval(mean) for _ in range(4000)]
        assert 0.5 * mean <= min(sleeps) and max(sleeps) <= 1.5 * mean
        assert statistics.mean(sleeps) == pytest.approx(mean, rel=0.05)

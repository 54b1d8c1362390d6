"""The replay bench runs and says what the mixer's buffer made of an impaired voice."""

from __future__ import annotations

from bench import jitter_replay


def test_replay_reports_continuity_delay_and_cost_for_each_loss() -> None:
    results = jitter_replay.main(["--seconds", "3", "--seeds", "1", "--losses", "0,0.05"])
    for loss in ("loss_0.0", "loss_0.05"):
        after = results[loss]["after"]
        assert set(after) == {"continuity", "delay_ms_p50", "delay_ms_p95", "cpu_us_per_tick"}
        # The tone comes through the buffer (FEC and concealment fill what 5% loss takes).
        assert after["continuity"] > 0.9
        assert after["delay_ms_p50"] is not None

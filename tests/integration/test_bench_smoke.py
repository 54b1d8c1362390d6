"""The benchmark runs end to end and says what it measured (no assertion on time)."""

from __future__ import annotations

import json

from bench import run

SUMMARY_KEYS = {
    "target",
    "participants",
    "joined",
    "errors",
    "server_cpu_ms_per_participant_s",
    "server_cpu_cores",
    "server_mb_per_participant",
    "server_rss_mb",
    "delivery",
    "loss",
    "packets_received",
    "listener_packets_per_s",
    "latency_ms_p50",
    "latency_ms_p95",
    "latency_samples",
    "continuity",
    "continuity_min",
    "mouth_to_ear_ms_p50",
    "mouth_to_ear_ms_p95",
    "mouth_to_ear_samples",
    "impaired_packets_dropped",
    "join_s_p50",
    "join_s_p95",
    "bot_cpu_cores",
    "loadavg_1m_at_window_start",
    "loadavg_1m_at_window_end",
    "server_wakeups_per_s",
    "first_circles_refused_busy_on_arrival",
    # From the server's /metrics over the window (Hearth only).
    "loop_lag_ms_mean",
    "loop_lag_share_over_100ms",
    "loop_lag_share_over_250ms",
    "joins_refused_busy_in_window",
}


def test_a_short_bench_run_reports_every_figure_and_the_speaker_is_heard() -> None:
    summary = run.main(
        [
            *("--circles", "1", "--size", "4", "--speakers", "1"),
            *("--seconds", "3", "--settle", "2", "--bot-procs", "1", "--targets", "hearth"),
        ]
    )
    json.dumps(summary)  # what the command prints
    assert set(summary) >= {"scenario", "machine", "results"}
    hearth = summary["results"]["hearth"]
    assert set(hearth) == SUMMARY_KEYS
    assert hearth["joined"] == hearth["participants"] == 4
    assert hearth["errors"] == []
    # The sampled listener heard the speaker's tone, and the marks to time it by.
    assert hearth["delivery"] == 1.0
    assert hearth["latency_samples"] >= 1
    assert hearth["server_wakeups_per_s"] > 0

"""Markdown table rows from bench/run.py JSON summaries (for docs/performance.md).

python -m bench.table /tmp/series_*.json
"""

from __future__ import annotations

import json
import sys

COLUMNS = (
    ("server_cpu_ms_per_participant_s", "CPU ms/participant-s"),
    ("delivery", "delivery"),
    ("loss", "loss"),
    ("latency_ms_p50", "latency p50 ms"),
    ("latency_ms_p95", "latency p95 ms"),
    ("join_s_p50", "join p50 s"),
    ("join_s_p95", "join p95 s"),
    ("server_mb_per_participant", "MB/participant"),
    ("bot_cpu_cores", "bot cores"),
    ("loadavg_1m_at_window_start", "load 1m"),
)


def main(paths: list[str]) -> None:
    print("| circles x size, speakers | engine | joined | " + " | ".join(c[1] for c in COLUMNS))
    print("| --- " * (3 + len(COLUMNS)) + "|")
    for path in paths:
        with open(path) as f:
            summary = json.load(f)
        s = summary["scenario"]
        label = f"{s['circles']} x {s['size']}, {s['speakers']}"
        for name, r in summary["results"].items():
            cells = [str(r.get(key)) for key, _ in COLUMNS]
            print(f"| {label} | {name} | {r['joined']}/{r['participants']} | " + " | ".join(cells))
        ratios = {k: v for k, v in summary.items() if k.startswith("cpu_ratio")}
        if ratios:
            text = ", ".join(f"{k.removeprefix('cpu_ratio_')}: {v}" for k, v in ratios.items())
            print(f"| {label} | CPU ratio | | {text} |" + " |" * (len(COLUMNS) - 1))


if __name__ == "__main__":
    main(sys.argv[1:])

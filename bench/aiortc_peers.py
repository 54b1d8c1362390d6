"""Server CPU with full aiortc peers (the skeleton-era baseline), optionally under py-spy.

    python -m bench.aiortc_peers --peers 6 --speakers 1 --seconds 10 [--py-spy out.txt]

The peers run aiortc's whole pipeline (about 1% of a core each), so this is for small
circles and profiles only; bench/run.py is the benchmark.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import tempfile
import time
from pathlib import Path

from signaling.peer import restrict_ice_addresses
from tests.support.peer import ScriptedParticipant
from tests.support.server import ServerProcess, link_token

TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


async def run(peers: int, speakers: int, seconds: float, py_spy: str | None) -> dict[str, float]:
    restrict_ice_addresses(("127.0.0.1",))
    with tempfile.TemporaryDirectory() as tmp:
        server = ServerProcess(data_dir=Path(tmp))
        server.start()
        assert server.process is not None
        pid = server.process.pid
        people: list[ScriptedParticipant] = []
        try:
            circle = server.create_circle()
            for i in range(peers):
                url = circle["host_url"] if i == 0 else circle["join_url"]
                tone = 300.0 + 170 * i if i < speakers else None
                p = ScriptedParticipant(server.ws_url, link_token(url), f"p{i}", tone)
                await p.connect()
                await p.join(muted=False)
                await p.start_audio()
                people.append(p)
            for p in people:
                await p.wait_connected()
            await asyncio.sleep(2)
            spy = None
            if py_spy:
                spy = subprocess.Popen(  # noqa: ASYNC220 - started once, not awaited
                    [
                        "py-spy",
                        "record",
                        "--pid",
                        str(pid),
                        "--duration",
                        str(int(seconds)),
                        "--format",
                        "raw",
                        "--output",
                        py_spy,
                        "--nonblocking",
                    ],
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
            c0, t0 = cpu_seconds(pid), time.monotonic()
            await asyncio.sleep(seconds)
            c1, t1 = cpu_seconds(pid), time.monotonic()
            if spy is not None:
                spy.wait(timeout=30)
            ms = (c1 - c0) * 1000 / ((t1 - t0) * peers)
            return {
                "peers": peers,
                "speakers": speakers,
                "server_cpu_ms_per_participant_s": ms,
                "loadavg_1m": os.getloadavg()[0],
            }
        finally:
            for p in people:
                await p.close()
            server.stop()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--peers", type=int, default=6)
    parser.add_argument("--speakers", type=int, default=1)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--py-spy", default=None)
    args = parser.parse_args()
    print(json.dumps(asyncio.run(run(args.peers, args.speakers, args.seconds, args.py_spy))))


if __name__ == "__main__":
    main()

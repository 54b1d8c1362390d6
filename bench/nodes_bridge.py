"""What bridging through a non-owner node costs: join time and per-message round trip,
straight to the owner vs through another node's door. Two real nodes on 127.0.0.2-3, the
machine's PostgreSQL (a throwaway database) and Redis (a key prefix of its own).

    .venv/bin/python -m bench.nodes_bridge [--joins 20] [--messages 200]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from pathlib import Path

from tests.conftest import throwaway_postgres_database
from tests.nodes.conftest import Cluster
from tests.support.peer import ScriptedParticipant
from tests.support.server import link_token


async def measure(cluster: Cluster, joins: int, messages: int) -> None:
    first = cluster.nodes[0]
    circle = first.create_circle("Bridge bench")
    host = ScriptedParticipant(first.ws_url, link_token(circle["host_url"]), "Ana", None)
    await host.connect()
    await host.join()
    owner = cluster.node(str(cluster.owner(circle["id"])))
    door = next(n for n in cluster.nodes[:2] if n is not owner)
    for label, node in (("direct", owner), ("bridged", door)):
        join_times, round_trips = [], []
        for i in range(joins):
            person = ScriptedParticipant(node.ws_url, link_token(circle["join_url"]), f"P{i}", None)
            started = time.perf_counter()
            await person.connect()
            await person.join()
            join_times.append(time.perf_counter() - started)
            if i == 0:
                for _ in range(messages):
                    mark = len(person.messages)
                    sent = time.perf_counter()
                    await person.send({"type": "mute", "muted": len(round_trips) % 2 == 0})
                    await person.wait_for("participant_updated", after=mark)
                    round_trips.append(time.perf_counter() - sent)
            await person.send({"type": "leave"})
            await person.close()
        print(
            f"{label:8s} join median {statistics.median(join_times) * 1000:6.1f} ms  "
            f"p90 {sorted(join_times)[int(len(join_times) * 0.9)] * 1000:6.1f} ms  "
            f"message round trip median {statistics.median(round_trips) * 1000:5.2f} ms  "
            f"p90 {sorted(round_trips)[int(len(round_trips) * 0.9)] * 1000:5.2f} ms"
        )
    await host.close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--joins", type=int, default=20)
    parser.add_argument("--messages", type=int, default=200)
    args = parser.parse_args()
    database = throwaway_postgres_database()
    url = next(database)
    with tempfile.TemporaryDirectory() as root:
        cluster = Cluster(Path(root), url)
        cluster.nodes = cluster.nodes[:2]
        cluster.start()
        try:
            asyncio.run(measure(cluster, args.joins, args.messages))
        finally:
            cluster.stop()
            next(database, None)
    print("load:", Path("/proc/loadavg").read_text().strip())


if __name__ == "__main__":
    main()

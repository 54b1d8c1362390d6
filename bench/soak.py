"""Soak: churning bots against a real server for a long while, with its memory sampled.

    python -m bench.soak --minutes 30 --sample-every 10 --out bench/results/soak.json
    python -m bench.soak --minutes 30 --database-url postgresql+asyncpg://...  (PostgreSQL)

A host with a real aiortc peer humming a tone stays for the whole run, and a listener
checks it keeps hearing it. Around them, cycles of churn (``churn_cycle``): people join,
toggle their mute, raise a hand, are muted and removed by the host, leave, drop their
connection and come back with their seat token. The server's resident memory (RSS), open
file descriptors and thread count are sampled every ``--sample-every`` seconds into a JSON
file, with the cycles done so far; the summary gives start, peak and end RSS.

The same ``churn_cycle`` drives tests/integration/test_no_leaks.py, which counts tasks,
descriptors and live objects instead of watching memory.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import tempfile
import time
from pathlib import Path
from typing import Any

from signaling.peer import restrict_ice_addresses
from tests.support.peer import ScriptedParticipant
from tests.support.server import ServerProcess, link_token

HOST_HZ = 500.0
# Bots joining per cycle (the first also sets up a real peer connection).
PER_CYCLE = 5


async def churn_cycle(ws_url: str, host: ScriptedParticipant, join_token: str, n: int) -> int:
    """One round of what people do in a circle; everyone it brought is gone at the end.

    Returns how many messages it sent. ``n`` numbers the cycle (names, which bot does what).
    """
    bots = [ScriptedParticipant(ws_url, join_token, f"Bot {n}-{i}", None) for i in range(PER_CYCLE)]
    sent = 0
    try:
        for bot in bots:
            await bot.connect()
            await bot.join(muted=True)
            sent += 1
        # One of them with audio: a real peer connection to set up and tear down.
        await bots[0].start_audio()
        await bots[0].wait_connected(timeout=20)
        for bot in bots:
            for muted in (False, True, False):
                await bot.send({"type": "mute", "muted": muted})
                sent += 1
        await bots[1].send({"type": "raise_hand"})
        ids = [bot.me["id"] for bot in bots if bot.me is not None]
        await host.send({"type": "mute_participant", "participant_id": ids[1]})
        await host.send({"type": "lower_hand", "participant_id": ids[1]})
        sent += 3
        # A drop and a come-back with the seat token, then a proper leave.
        await bots[2].reconnect()
        await bots[2].wait_connected(timeout=20)
        # The host removes one; another drops for good and the host removes its kept seat.
        await host.send({"type": "remove", "participant_id": ids[3]})
        await bots[3].wait_until(lambda: bots[3].closed_code is not None, timeout=10)
        await bots[4].drop()
        await host.wait_until(
            lambda: host.participants.get(ids[4], {}).get("connection") == "reconnecting"
        )
        await host.send({"type": "remove", "participant_id": ids[4]})
        await host.wait_until(lambda: ids[4] not in host.participants)
        sent += 2
        for bot in bots[:3]:
            await bot.send({"type": "leave"})
            await bot.wait_until(lambda b=bot: b.closed_code is not None, timeout=10)
            sent += 1
    finally:
        for bot in bots:
            with contextlib.suppress(Exception):
                await bot.close()
    return sent


def sample(pid: int) -> dict[str, int]:
    status = Path(f"/proc/{pid}/status").read_text()
    fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
    return {
        "rss_kb": int(fields["VmRSS"].split()[0]),
        "threads": int(fields["Threads"].strip()),
        "fds": len(os.listdir(f"/proc/{pid}/fd")),
    }


async def soak(
    minutes: float, sample_every: float, pause: float, database_url: str | None
) -> dict[str, Any]:
    restrict_ice_addresses(("127.0.0.1",))
    with tempfile.TemporaryDirectory() as tmp:
        env = {"HEARTH_DATABASE_URL": database_url} if database_url else {}
        server = ServerProcess(data_dir=Path(tmp), extra_env=env)
        server.start()
        assert server.process is not None
        pid = server.process.pid
        samples: list[dict[str, Any]] = []
        errors: list[str] = []
        try:
            circle = server.create_circle("Soak", duration_minutes=int(minutes) + 60)
            host = ScriptedParticipant(
                server.ws_url, link_token(circle["host_url"]), "Host", HOST_HZ
            )
            await host.connect()
            await host.join(muted=False)
            await host.start_audio()
            listener = ScriptedParticipant(
                server.ws_url, link_token(circle["join_url"]), "Listener", None
            )
            await listener.connect()
            await listener.join(muted=True)
            await listener.start_audio()
            start = time.monotonic()
            end = start + minutes * 60
            cycles = messages = 0
            next_sample = start
            while time.monotonic() < end:
                now = time.monotonic()
                if now >= next_sample:
                    heard = listener.hears(now - min(sample_every, 5), [HOST_HZ])[HOST_HZ]
                    samples.append(
                        {
                            "t": round(now - start, 1),
                            "cycles": cycles,
                            "messages": messages,
                            "host_heard": round(heard, 3),
                            **sample(pid),
                        }
                    )
                    print(json.dumps(samples[-1]), flush=True)
                    next_sample += sample_every
                try:
                    messages += await churn_cycle(
                        server.ws_url, host, link_token(circle["join_url"]), cycles
                    )
                except Exception as error:  # keep soaking; report what went wrong
                    errors.append(f"cycle {cycles}: {type(error).__name__}: {error}")
                cycles += 1
                # Low rate: the soak shares the machine; jitter keeps cycles from aligning.
                await asyncio.sleep(pause * (0.5 + random.random()))
            samples.append(
                {
                    "t": round(time.monotonic() - start, 1),
                    "cycles": cycles,
                    "messages": messages,
                    **sample(pid),
                }
            )
            await listener.close()
            await host.close()
        finally:
            server.stop()
    rss = [s["rss_kb"] for s in samples]
    return {
        "command": f"python -m bench.soak --minutes {minutes} --sample-every {sample_every}",
        "minutes": minutes,
        "cycles": samples[-1]["cycles"],
        "messages": samples[-1]["messages"],
        "rss_kb": {"start": rss[0], "peak": max(rss), "end": rss[-1]},
        "errors": errors,
        "samples": samples,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--minutes", type=float, default=30)
    parser.add_argument("--sample-every", type=float, default=10)
    parser.add_argument("--pause", type=float, default=1.0, help="seconds between cycles")
    parser.add_argument("--database-url", default=None)
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    result = asyncio.run(soak(args.minutes, args.sample_every, args.pause, args.database_url))
    result["load"] = os.getloadavg()
    text = json.dumps(result, indent=1)
    if args.out:
        Path(args.out).write_text(text)
    print(json.dumps({k: v for k, v in result.items() if k != "samples"}))


if __name__ == "__main__":
    main()

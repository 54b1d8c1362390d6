"""Run one benchmark scenario against Hearth and Janus AudioBridge; print a JSON summary.

    python -m bench.run --circles 4 --size 12 --speakers 1 --seconds 20
    python -m bench.run --circles 16 --size 12 --speakers 1 --targets hearth
    python -m bench.run --circles 4 --size 12 --listener-pps 50 --muted-listeners
    python -m bench.run --circles 2 --size 6 --loss 0.05 --jitter-ms 30 --reorder 0.01

    python -m bench.run --circles 12 --newcomer-circles 16 --seconds 30 \
        --targets hearth,hearth_unprotected,janus      # overload: past capacity mid-run

With ``--newcomer-circles K``, K more circles of the same size arrive during the window
(``--newcomer-rate`` joins a second), pushing the server past capacity: delivery, loss and
latency are then those of the circles that were there first, and the newcomers are counted
as joined or refused (``server_busy``). ``hearth_unprotected`` is Hearth with the busy
refusal off (``HEARTH_BUSY_LAG_MS=0``), to show what the refusal buys. Refused bots knock
again with the page's backoff (bench/targets.py), hosts included: a newcomer circle opens
once its host gets in. The server's loop lag over the window is read from its /metrics.

Bots run in separate processes (bench/bots.py). The server's CPU is read from /proc for the
server process alone, over a window that starts once every bot has joined. Numbers are per
participant; compare targets measured in the same run (docs/performance.md).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import secrets
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

import redis
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from bench import media
from bench.janus import MEDIA_ADDRESS, JanusProcess, Namespace
from server.config import DEFAULT_BUSY_LAG_MS
from tests.support.server import ServerProcess, free_port, link_token

TICKS = os.sysconf("SC_CLK_TCK")
PAGE_KB = os.sysconf("SC_PAGE_SIZE") // 1024
REPO = Path(__file__).resolve().parents[1]


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def wakeups(pid: int) -> int:
    """Times the process's threads were switched in after sleeping (voluntary context
    switches, every thread): the event loop's wake-ups, which cost far more than a packet's
    own work on this virtual machine (docs/performance.md)."""
    total = 0
    for status in Path(f"/proc/{pid}/task").glob("*/status"):
        try:
            for line in status.read_text().splitlines():
                if line.startswith("voluntary_ctxt_switches:"):
                    total += int(line.split()[1])
        except OSError:  # a thread that ended between listing and reading
            continue
    return total


def rss_mb(pid: int) -> float:
    return int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * PAGE_KB / 1024


def percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


REDIS_URL = "redis://127.0.0.1:6379/0"


class HearthTarget:
    ice_address = "127.0.0.1"
    prefix: list[str] = []

    VARIANTS = {
        # name: (forward a lone voice, write RTP directly)
        "hearth": ("1", "1"),
        "hearth_mixing_only": ("0", "1"),
        "hearth_aiortc_sender": ("1", "0"),
        "hearth_unprotected": ("1", "1"),
        # The same server; its bots offer one receive track (a page before receive slots).
        "hearth_one_slot": ("1", "1"),
        # The same server at a normal priority (HEARTH_NICE=0) instead of the default's
        # raised one (server/priority.py): what the priority buys on a starved machine.
        "hearth_normal_priority": ("1", "1"),
    }
    # Variants that take every arrival however late the event loop is.
    UNPROTECTED = {"hearth_unprotected"}
    NORMAL_PRIORITY = {"hearth_normal_priority"}

    def __init__(
        self,
        workdir: Path,
        name: str = "hearth",
        workers: int | None = None,
        busy_lag_ms: int = DEFAULT_BUSY_LAG_MS,
        postgres_admin_url: str | None = None,
        nodes: int | None = None,
    ) -> None:
        self.name = name
        forwarding, direct = self.VARIANTS[name]
        busy = 0 if name in self.UNPROTECTED else busy_lag_ms
        # Prometheus metrics on a port of their own: the loop's lag and the refusals.
        self.metrics_port = free_port()
        env = {
            "HEARTH_METRICS_PORT": str(self.metrics_port),
            "HEARTH_AUDIO_FORWARDING": forwarding,
            "HEARTH_AUDIO_DIRECT_RTP": direct,
            "HEARTH_BUSY_LAG_MS": str(busy),
            **({"HEARTH_NICE": "0"} if name in self.NORMAL_PRIORITY else {}),
            # Every bot comes from 127.0.0.1: to the server, hundreds of people behind one
            # address, all connecting at once. The per-address limit is not what is measured.
            "HEARTH_UNJOINED_SOCKETS_PER_ADDRESS": "100000",
        }
        # A throwaway PostgreSQL database for this run, instead of SQLite in the data folder.
        self.postgres = ThrowawayPostgres(postgres_admin_url) if postgres_admin_url else None
        if self.postgres is not None:
            env["HEARTH_DATABASE_URL"] = self.postgres.url
        # With --nodes N: N nodes on 127.0.0.2.. sharing the database and the machine's Redis
        # (a key prefix of the run's own); each circle's people come in through every door.
        self.redis_prefix = f"hearth-bench-{secrets.token_hex(4)}:"
        self.nodes = [
            ServerProcess(
                data_dir=workdir / f"{self.name}-node{i}",
                host=f"127.0.0.{2 + i}",
                extra_env={
                    **env,
                    "HEARTH_REDIS_URL": REDIS_URL,
                    "HEARTH_REDIS_PREFIX": self.redis_prefix,
                    "HEARTH_NODE_ID": f"node{i}",
                },
            )
            for i in range(nodes or 0)
        ]
        self.server = (
            self.nodes[0]
            if self.nodes
            else ServerProcess(data_dir=workdir / self.name, extra_env=env, workers=workers)
        )

    def start(self) -> int:
        for node in self.nodes[1:]:
            node.launch()
        self.server.start()
        for node in self.nodes[1:]:
            node.wait_ready(timeout=60)
        assert self.server.process is not None
        return self.server.process.pid

    def pids(self) -> list[int]:
        """The server's processes: the front and (with --workers) every worker, or every
        node (with --nodes)."""
        assert self.server.process is not None
        if self.nodes:
            return [n.process.pid for n in self.nodes if n.process is not None]
        workers = [pid for pid, _ in self.server.worker_processes().values()]
        return [self.server.process.pid, *workers]

    def scrape(self) -> dict[str, float]:
        """The server's loop-lag and refusal counters now (one process: the overload runs)."""
        url = f"http://127.0.0.1:{self.metrics_port}/metrics"
        try:
            with urllib.request.urlopen(url, timeout=10) as response:
                text = response.read().decode()
        except OSError:
            return {}
        found: dict[str, float] = {}
        for line in text.splitlines():
            if line.startswith(("hearth_event_loop_lag_seconds", "hearth_join_refusals_total")):
                name, value = line.rsplit(" ", 1)
                found[name] = float(value)
        return found

    def circles(self, count: int) -> list[dict[str, Any]]:
        made = []
        doors = self.nodes or [self.server]
        for i in range(count):
            circle = self.server.create_circle(title=f"Bench circle {i}")
            host_door, guest_door = doors[i % len(doors)], doors[(i + 1) % len(doors)]
            made.append(
                {
                    "host": {"ws_url": host_door.ws_url, "token": link_token(circle["host_url"])},
                    "guest": {
                        "ws_url": guest_door.ws_url,
                        "token": link_token(circle["join_url"]),
                    },
                }
            )
        return made

    def stop(self) -> None:
        for node in self.nodes[1:]:
            node.stop()
        self.server.stop()
        if self.nodes:
            with redis.Redis.from_url(REDIS_URL) as r:
                for key in r.scan_iter(f"{self.redis_prefix}*"):
                    r.delete(key)
        if self.postgres is not None:
            self.postgres.drop()
        # Keep the last server log for a look at any errors (no media, no personal data).
        log = self.server.log_text()
        Path(tempfile.gettempdir(), f"{self.name}-bench-server.log").write_text(log)


class ThrowawayPostgres:
    """A database made for one bench target on an existing PostgreSQL, dropped after it."""

    def __init__(self, admin_url: str) -> None:
        self._admin_url = admin_url
        name = f"hearth_bench_{secrets.token_hex(6)}"
        self._autocommit(f'CREATE DATABASE "{name}"')
        self._name = name
        self.url = make_url(admin_url).set(database=name).render_as_string(hide_password=False)

    def drop(self) -> None:
        self._autocommit(f'DROP DATABASE IF EXISTS "{self._name}" WITH (FORCE)')

    def _autocommit(self, statement: str) -> None:
        async def run() -> None:
            engine = create_async_engine(self._admin_url, isolation_level="AUTOCOMMIT")
            try:
                async with engine.connect() as connection:
                    await connection.execute(text(statement))
            finally:
                await engine.dispose()

        asyncio.run(run())


def lag_between(before: dict[str, float], after: dict[str, float]) -> dict[str, Any]:
    """The event loop's lag over a window, from two scrapes of its histogram: how late a
    0.5 s timer fired on average, and the share of those timers late by over 100/250 ms."""

    def grew(name: str) -> float:
        return after.get(name, 0.0) - before.get(name, 0.0)

    count = grew("hearth_event_loop_lag_seconds_count")
    if not after or count <= 0:
        return {}
    late = {
        f"loop_lag_share_over_{ms}ms": round(
            1 - grew(f'hearth_event_loop_lag_seconds_bucket{{le="{le}"}}') / count, 3
        )
        for ms, le in ((100, "0.1"), (250, "0.25"))
    }
    return {
        "loop_lag_ms_mean": round(grew("hearth_event_loop_lag_seconds_sum") / count * 1000, 1),
        **late,
        "joins_refused_busy_in_window": int(grew('hearth_join_refusals_total{code="server_busy"}')),
    }


class JanusTarget:
    name = "janus"
    ice_address = MEDIA_ADDRESS

    def __init__(self, workdir: Path) -> None:
        self.namespace = Namespace()
        self.prefix = self.namespace.prefix()
        self.janus = JanusProcess(workdir / "janus", free_port(), self.namespace)

    def start(self) -> int:
        self.janus.start()
        assert self.janus.process is not None
        return self.janus.process.pid

    def pids(self) -> list[int]:
        assert self.janus.process is not None
        return [self.janus.process.pid]

    def circles(self, count: int) -> list[dict[str, Any]]:
        rooms = list(range(1000, 1000 + count))
        self.janus.create_rooms(rooms)
        spec = [{"janus_url": self.janus.url, "room": room} for room in rooms]
        return [{"host": s, "guest": s} for s in spec]

    def stop(self) -> None:
        self.janus.stop()
        self.namespace.close()


HOSTS_HEAD_START = 2.0
# Nice value of the bots during --stress runs: above the busy loops and both servers.
BOTS_NICE_UNDER_STRESS = -10


def _above_the_stress() -> None:
    # Not root: the bots run as started (the summary's load says how starved).
    with contextlib.suppress(PermissionError):
        os.setpriority(os.PRIO_PROCESS, 0, BOTS_NICE_UNDER_STRESS)


# --stress processes start this long before the window, once everyone has joined.
STRESS_LEAD = 1.0


def plan_bots(
    circles: list[dict[str, Any]],
    size: int,
    speakers: int,
    sampled: int,
    join_rate: float,
    *,
    start: float | None = None,
    first_index: int = 0,
    newcomer: bool = False,
    muted_listeners: bool = False,
) -> list[dict[str, Any]]:
    """Hosts join first (a Hearth circle opens for its guests once its host is in)."""
    bots: list[dict[str, Any]] = []
    for round_ in range(size):
        for i, circle in enumerate(circles):
            c = first_index + i
            role = "host" if round_ == 0 else "guest"
            bots.append(
                {
                    **circle[role],
                    "circle": c,
                    "name": f"Bot {c}-{round_}",
                    "tone": round_ if round_ < speakers else None,
                    "sampled": speakers <= round_ < speakers + sampled,
                    "newcomer": newcomer,
                    "muted": muted_listeners and round_ >= speakers,
                }
            )
    if start is None:
        start = time.monotonic() + 4.0  # the bot processes import aiortc and encode media first
    for i, bot in enumerate(bots):
        # Guests come once the hosts are in: on a loaded machine a host's join takes seconds,
        # and a guest before the host would find the circle not open yet.
        head_start = HOSTS_HEAD_START if i >= len(circles) else 0.0
        bot["start_at"] = start + i / join_rate + head_start
    return bots


def run_target(target: HearthTarget | JanusTarget, args: argparse.Namespace) -> dict[str, Any]:
    pid = target.start()
    stress: list[subprocess.Popen[bytes]] = []  # busy loops, never left behind on an error
    try:
        made = target.circles(args.circles + args.newcomer_circles)
        circles, arriving = made[: args.circles], made[args.circles :]
        time.sleep(0.5)
        # With workers, the server is several processes: CPU and memory are their sums.
        server = target.pids()
        rss_idle = sum(rss_mb(p) for p in server)
        bots = plan_bots(
            circles,
            args.size,
            args.speakers,
            args.sampled,
            args.join_rate,
            muted_listeners=args.muted_listeners,
        )
        joined_by = bots[-1]["start_at"] + args.settle
        window = (joined_by, joined_by + args.seconds)
        if arriving:
            # Past capacity while the first circles are measured: from 1 s into the window.
            bots += plan_bots(
                arriving,
                args.size,
                args.speakers,
                0,
                args.newcomer_rate or args.join_rate,
                start=window[0] + 1.0,
                first_index=len(circles),
                newcomer=True,
            )
        procs = []
        for p in range(args.bot_procs):
            plan = {
                "target": target.name,
                "ice_address": target.ice_address,
                "window": window,
                "bots": bots[p :: args.bot_procs],
                "listener_pps": args.listener_pps,
                "listener_sound": args.listener_sound,
                "levels": args.levels,
                "rtcp_seconds": args.bot_rtcp_seconds,
                # Receive tracks each bot offers: Hearth's page offers several (web/rtc.js);
                # Janus's AudioBridge sends one mix.
                "slots": 1 if target.name in ("janus", "hearth_one_slot") else args.slots,
                "impairment": {
                    "loss": args.loss,
                    "jitter_ms": args.jitter_ms,
                    "reorder": args.reorder,
                },
            }
            proc = subprocess.Popen(
                [*target.prefix, sys.executable, "-m", "bench.bots"],
                # With --stress the busy loops starve the server's machine; the people are on
                # machines of their own, so their bots must not be starved with it (else they
                # miss what was delivered: a forwarding server's three streams sooner than
                # Janus's one mix). The same for every target.
                preexec_fn=_above_the_stress if args.stress else None,
                cwd=REPO,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                env={**os.environ, "PYTHONUNBUFFERED": "1"},
            )
            assert proc.stdin is not None
            proc.stdin.write(json.dumps(plan).encode())
            proc.stdin.close()
            procs.append(proc)
        time.sleep(max(0.0, window[0] - STRESS_LEAD - time.monotonic()))
        # A starved CPU for the window (the overload scenario): the same for every target.
        stress += [
            subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(args.stress)
        ]
        time.sleep(max(0.0, window[0] - time.monotonic()))
        metrics0 = target.scrape() if isinstance(target, HearthTarget) else {}
        cpu0, load0 = sum(cpu_seconds(p) for p in server), os.getloadavg()[0]
        wakes0 = sum(wakeups(p) for p in server)
        bots0 = sum(cpu_seconds(proc.pid) for proc in procs)
        spy = None
        if args.py_spy and target.name.startswith("hearth"):
            spy = subprocess.Popen(
                [
                    *("py-spy", "record", "--pid", str(pid), "--duration", str(int(args.seconds))),
                    *("--format", "raw", "--output", args.py_spy, "--nonblocking"),
                    *("--rate", str(args.py_spy_rate)),
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        time.sleep(max(0.0, window[1] - time.monotonic()))
        cpu1 = sum(cpu_seconds(p) for p in server)
        wakes = sum(wakeups(p) for p in server) - wakes0
        load1 = os.getloadavg()[0]
        lag = lag_between(metrics0, target.scrape() if isinstance(target, HearthTarget) else {})
        for hog in stress:
            hog.kill()
            hog.wait()
        stress.clear()
        rss_busy = sum(rss_mb(p) for p in server)
        bot_cpu = sum(cpu_seconds(proc.pid) for proc in procs) - bots0
        if spy is not None:
            spy.wait()
        reports: list[dict[str, Any]] = []
        for proc in procs:
            assert proc.stdout is not None
            out = proc.stdout.read()
            proc.wait(timeout=60)
            reports += json.loads(out)
        summary = summarise(
            target.name, reports, args, cpu1 - cpu0, rss_idle, rss_busy, load0, bot_cpu
        )
        return {
            **summary,
            "server_wakeups_per_s": round(wakes / args.seconds, 1),
            "loadavg_1m_at_window_end": round(load1, 2),
            **lag,
        }
    finally:
        for hog in stress:
            hog.kill()
            hog.wait()
        target.stop()


def summarise(
    name: str,
    reports: list[dict[str, Any]],
    args: argparse.Namespace,
    cpu: float,
    rss_idle: float,
    rss_busy: float,
    load: float,
    bot_cpu: float,
) -> dict[str, Any]:
    arrivals = [r for r in reports if r.get("newcomer")]
    reports = [r for r in reports if not r.get("newcomer")]
    joined = [r for r in reports if r["join_seconds"] is not None]
    errors = sorted({r["error"] for r in reports if r["error"]})[:5]
    n = max(1, len(joined))
    expected = sum(r["expected"] for r in joined)
    received = sum(r["received"] for r in joined)
    # Latency: each burst start heard at a sampled listener, against when it was sent.
    latencies: list[float] = []
    mouth_to_ear: list[float] = []
    continuity: list[float] = []
    delivered = pairs = 0
    speaking_frames = args.seconds / media.FRAME_SECONDS * media.BURST_FRAMES / media.CYCLE_FRAMES
    for listener in (r for r in joined if r["sampled"]):
        in_circle = [r for r in joined if r["circle"] == listener["circle"]]
        for speaker in (r for r in in_circle if r["tone"] is not None):
            pairs += 1
            tone = speaker["tone"]
            if listener["loud_frames"][tone] >= 0.5 * speaking_frames:
                delivered += 1
            marks = speaker["marks_sent"]
            for t, heard_at in listener["onsets"]:
                if t != tone:
                    continue
                sent = [m for m in marks if m <= heard_at]
                if sent and heard_at - sent[-1] < 0.5:
                    latencies.append((heard_at - sent[-1]) * 1000)
            # Through the model jitter buffer (bench.playout): what a person would hear.
            at_level = listener.get("at_level_frames", [0, 0, 0])[tone]
            continuity.append(min(1.0, at_level / speaking_frames))
            for t, played_at in listener.get("played_onsets", []):
                sent = [m for m in marks if m <= played_at]
                if t == tone and sent and played_at - sent[-1] < 0.5:
                    mouth_to_ear.append((played_at - sent[-1]) * 1000)
    joins = [r["join_seconds"] for r in joined]
    newcomers: dict[str, Any] = {}
    if arrivals:
        # Figures above are the first circles'; these are the people who came past capacity.
        # Each knocks again with backoff after a refusal, as the page does (bench.targets).
        def busy(r: dict[str, Any]) -> bool:
            return "server_busy" in r.get("refusals", [])

        newcomers = {
            "newcomers": len(arrivals),
            "newcomers_refused_busy": sum(1 for r in arrivals if busy(r)),
            "newcomers_refused_busy_never_joined": sum(
                1 for r in arrivals if busy(r) and r["join_seconds"] is None
            ),
            "newcomers_joined": sum(1 for r in arrivals if r["join_seconds"] is not None),
            "newcomers_joined_first_knock": sum(
                1 for r in arrivals if r["join_seconds"] is not None and not r.get("refusals")
            ),
            "newcomer_busy_refusals": sum(
                r.get("refusals", []).count("server_busy") for r in arrivals
            ),
            "newcomer_other_errors": sorted(
                {r["error"][:120] for r in arrivals if r["error"] and not busy(r)}
            )[:5],
        }
    # The first circles' own knocks: refused while they were arriving (before the window).
    first_refused_busy = sum(1 for r in reports if "server_busy" in r.get("refusals", []))
    return {
        "target": name,
        "participants": len(reports),
        "joined": len(joined),
        "errors": errors,
        "server_cpu_ms_per_participant_s": round(cpu * 1000 / (args.seconds * n), 3),
        "server_cpu_cores": round(cpu / args.seconds, 3),
        "server_mb_per_participant": round((rss_busy - rss_idle) / n, 3),
        "server_rss_mb": round(rss_busy, 1),
        "delivery": round(delivered / pairs, 3) if pairs else None,
        "loss": round(1 - received / expected, 5) if expected else None,
        "packets_received": received,
        # What each listener who does not speak was sent, a second: 0 while nothing is mixed
        # or forwarded, 50 while a stream runs.
        "listener_packets_per_s": round(
            sum(r["received"] for r in joined if r["tone"] is None)
            / max(1, sum(1 for r in joined if r["tone"] is None))
            / args.seconds,
            2,
        ),
        "latency_ms_p50": _round(percentile(latencies, 0.5)),
        "latency_ms_p95": _round(percentile(latencies, 0.95)),
        "latency_samples": len(latencies),
        "continuity": _round(sum(continuity) / len(continuity)) if continuity else None,
        "continuity_min": _round(min(continuity)) if continuity else None,
        "mouth_to_ear_ms_p50": _round(percentile(mouth_to_ear, 0.5)),
        "mouth_to_ear_ms_p95": _round(percentile(mouth_to_ear, 0.95)),
        "mouth_to_ear_samples": len(mouth_to_ear),
        "impaired_packets_dropped": sum(
            r.get("uplink_dropped", 0) + r.get("downlink_dropped", 0) for r in joined
        ),
        "join_s_p50": _round(percentile(joins, 0.5)),
        "join_s_p95": _round(percentile(joins, 0.95)),
        # Bots near 1 core per process cannot keep their pace: the run then says more
        # about the bots than about the server.
        "bot_cpu_cores": round(bot_cpu / args.seconds, 3),
        "loadavg_1m_at_window_start": round(load, 2),
        "first_circles_refused_busy_on_arrival": first_refused_busy,
        **newcomers,
    }


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(prog="python -m bench.run")
    parser.add_argument("--circles", type=int, default=1)
    parser.add_argument("--size", type=int, default=12)
    parser.add_argument("--speakers", type=int, default=1, choices=(0, 1, 2, 3))
    parser.add_argument("--sampled", type=int, default=1, help="decoding listeners per circle")
    parser.add_argument("--seconds", type=float, default=15)
    parser.add_argument("--settle", type=float, default=3)
    parser.add_argument("--join-rate", type=float, default=20, help="joins per second")
    parser.add_argument("--bot-procs", type=int, default=2)
    parser.add_argument(
        "--targets",
        default="hearth,janus",
        help="any of janus, " + ", ".join(HearthTarget.VARIANTS),
    )
    parser.add_argument(
        "--slots", type=int, default=3, help="receive tracks a Hearth bot offers, as the page"
    )
    parser.add_argument(
        "--listener-pps",
        type=float,
        default=1 / media.DTX_INTERVAL,
        help="packets a second a silent listener sends: 2.5 with DTX (default), 50 without",
    )
    parser.add_argument(
        "--listener-sound",
        choices=("dtx", "noise"),
        default="dtx",
        help="what a silent listener sends: DTX silence (a browser) or, like a client without "
        "DTX or RFC 6464 levels, Opus-coded background noise at -45 dBov",
    )
    parser.add_argument(
        "--levels",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="bots put an RFC 6464 audio level in every packet, as browsers do (default); "
        "with --no-levels the server judges their voices from the audio, as for a client "
        "that sends none",
    )
    parser.add_argument(
        "--bot-rtcp-seconds",
        type=float,
        default=5.0,
        help="mean interval of each bot stream's RTCP reports: 5 s as Chromium's audio "
        "(default), 1 s as aiortc's",
    )
    parser.add_argument(
        "--muted-listeners", action="store_true", help="listeners join muted (speakers never)"
    )
    parser.add_argument("--loss", type=float, default=0.0, help="RTP loss each way, per bot")
    parser.add_argument("--jitter-ms", type=float, default=0.0, help="uniform delay 0..this")
    parser.add_argument("--reorder", type=float, default=0.0, help="share of packets reordered")
    parser.add_argument(
        "--stress",
        type=int,
        default=0,
        help="busy-looping processes run through each target's window (a starved CPU)",
    )
    parser.add_argument("--py-spy", help="profile Hearth's server in the window into this file")
    parser.add_argument("--py-spy-rate", type=int, default=100, help="py-spy samples a second")
    parser.add_argument(
        "--workers", type=int, help="run Hearth as 'hearth serve --workers N' (default: 1 process)"
    )
    parser.add_argument(
        "--nodes",
        type=int,
        help="run Hearth as N nodes on 127.0.0.2.. with the machine's Redis (needs --postgres)",
    )
    parser.add_argument(
        "--newcomer-circles",
        type=int,
        default=0,
        help="circles arriving during the window, past capacity (the overload scenario)",
    )
    parser.add_argument("--newcomer-rate", type=float, help="their joins per second")
    parser.add_argument(
        "--postgres",
        metavar="ADMIN_URL",
        help="run Hearth on a throwaway database made on this PostgreSQL (an asyncpg URL "
        "of a database to connect to for CREATE DATABASE); default SQLite",
    )
    parser.add_argument(
        "--busy-lag-ms",
        type=int,
        default=DEFAULT_BUSY_LAG_MS,
        help="Hearth's HEARTH_BUSY_LAG_MS (the server's default; 0: never refuse for load)",
    )
    args = parser.parse_args(argv)
    if args.nodes and not args.postgres:
        parser.error("--nodes needs --postgres (every node shares one database)")
    results: dict[str, Any] = {
        "scenario": {
            "circles": args.circles,
            "size": args.size,
            "speakers": args.speakers,
            "seconds": args.seconds,
            "bot_procs": args.bot_procs,
            "workers": args.workers or 1,
            "nodes": args.nodes or 1,
            "newcomer_circles": args.newcomer_circles,
            "busy_lag_ms": args.busy_lag_ms,
            "stress_processes": args.stress,
            "database": "postgresql" if args.postgres else "sqlite",
            "listener_pps": args.listener_pps,
            "listener_sound": args.listener_sound,
            "levels": args.levels,
            "bot_rtcp_seconds": args.bot_rtcp_seconds,
            "slots": args.slots,
            "muted_listeners": args.muted_listeners,
            "impairment": {"loss": args.loss, "jitter_ms": args.jitter_ms, "reorder": args.reorder},
        },
        "machine": {"cores": os.cpu_count(), "loadavg_1m_before": os.getloadavg()[0]},
        "results": {},
    }
    with tempfile.TemporaryDirectory(prefix="hearth-bench-") as tmp:
        for name in args.targets.split(","):
            target: HearthTarget | JanusTarget = (
                JanusTarget(Path(tmp))
                if name == "janus"
                else HearthTarget(
                    Path(tmp), name, args.workers, args.busy_lag_ms, args.postgres, args.nodes
                )
            )
            results["results"][name] = run_target(target, args)
    found = results["results"]
    janus_cpu = found.get("janus", {}).get("server_cpu_ms_per_participant_s")
    for name in HearthTarget.VARIANTS:
        if name in found and janus_cpu:
            results[f"cpu_ratio_{name}_over_janus"] = round(
                found[name]["server_cpu_ms_per_participant_s"] / janus_cpu, 3
            )
    return results


if __name__ == "__main__":
    print(json.dumps(main(), indent=2))

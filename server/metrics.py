"""Prometheus metrics on a listener of their own (HEARTH_METRICS_PORT), never the public port.

Most values are read from the live state when Prometheus scrapes (circles, seats, lobby,
media packets, RTCP reports, CPU), so the audio path and the hub carry no metric code.
Signaling reports the few moments that leave no state behind (a join, a refusal, ICE
completing) through ``signaling.telemetry``. No label names a circle or a person.

With ``hearth serve --workers N``, the front's HEARTH_METRICS_PORT is still the one place
to scrape: each worker keeps its own metrics (its live circles, joins, media) and answers
``/internal/metrics`` on its loopback port; the front fetches them at every scrape and
serves everything at once, each sample labelled ``worker`` ("front", "0", "1", ...). Sum
over ``worker`` for the whole server (``sum(hearth_participants)``); a worker that does not
answer (restarting) shows as ``hearth_worker_up{worker="i"} 0``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections.abc import AsyncIterator, Callable, Iterable, Sequence

import aiohttp
from aiohttp import web
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client import (
    platform_collector as _platform,
)
from prometheus_client import (
    process_collector as _process,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.registry import Collector
from sqlalchemy import event

from server.appkeys import DATABASE, HUB, SUPERVISOR
from signaling import peer, telemetry, voice

log = logging.getLogger(__name__)

# Seconds: from a few ms (a warm join on loopback) to what a person gives up at.
JOIN_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 4, 8, 15, 30)
LAG_EVERY = 0.5


class Metrics(telemetry.Observer):
    """Every Hearth metric, in a registry of its own (tests make one per app)."""

    def __init__(self) -> None:
        r = self.registry = CollectorRegistry()
        _process.ProcessCollector(registry=r)
        _platform.PlatformCollector(registry=r)
        self.live_circles = Gauge("hearth_live_circles", "Circles open now", registry=r)
        self.participants = Gauge(
            "hearth_participants", "People seated in open circles", registry=r
        )
        self.lobby = Gauge("hearth_lobby_waiting", "People waiting in lobbies", registry=r)
        self.joins = Counter("hearth_joins", "Joins that got a seat or a lobby place", registry=r)
        self.refusals = Counter(
            "hearth_join_refusals", "Joins refused, by error code", ["code"], registry=r
        )
        self.join_seconds = Histogram(
            "hearth_join_seconds",
            "From a join message to its seat (or lobby place)",
            buckets=JOIN_BUCKETS,
            registry=r,
        )
        self.media_connect_seconds = Histogram(
            "hearth_media_connect_seconds",
            "From an offer to its ICE connection completing",
            buckets=JOIN_BUCKETS,
            registry=r,
        )
        r.register(_MediaPackets())
        r.register(_DroppedPackets())
        r.register(_BatchedDatagrams())
        self.rtt = Gauge(
            "hearth_listener_rtt_seconds",
            "Round-trip time from listeners' RTCP receiver reports (mean, max)",
            ["stat"],
            registry=r,
        )
        self.loss = Gauge(
            "hearth_listener_loss_ratio",
            "Fraction lost from listeners' RTCP receiver reports (mean, max)",
            ["stat"],
            registry=r,
        )
        self.loop_lag = Histogram(
            "hearth_event_loop_lag_seconds",
            f"How late a {LAG_EVERY} s timer fires (the loop is busy)",
            buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
            registry=r,
        )
        self.db_write_seconds = Histogram(
            "hearth_database_write_seconds",
            "Time of each INSERT, UPDATE or DELETE statement",
            buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1),
            registry=r,
        )
        self.cpu_per_participant = Gauge(
            "hearth_cpu_seconds_per_participant_second",
            "Process CPU seconds per seated participant per second, since the last scrape",
            registry=r,
        )
        self._last_cpu: tuple[float, float] | None = None

    # signaling.telemetry.Observer ---------------------------------------------------
    def joined(self, seconds: float) -> None:
        self.joins.inc()
        self.join_seconds.observe(seconds)

    def refused(self, code: str) -> None:
        self.refusals.labels(code=code).inc()

    def media_connected(self, seconds: float) -> None:
        self.media_connect_seconds.observe(seconds)

    # Read at scrape time --------------------------------------------------------------
    async def refresh(self, app: web.Application) -> None:
        hub = app.get(HUB)
        if hub is not None:
            circles = hub.live_circles()
            seated = sum(len(c.state.seats) for c in circles)
            self.live_circles.set(len(circles))
            self.participants.set(seated)
            self.lobby.set(sum(len(c.state.lobby) for c in circles))
            self._cpu_per_participant(seated)
        reports = await peer.listener_reports()
        rtts = [rtt for rtt, _ in reports if rtt is not None]
        losses = [loss for _, loss in reports]
        for gauge, values in ((self.rtt, rtts), (self.loss, losses)):
            gauge.labels(stat="mean").set(sum(values) / len(values) if values else 0)
            gauge.labels(stat="max").set(max(values, default=0))

    def _cpu_per_participant(self, seated: int) -> None:
        times = os.times()
        now = (time.monotonic(), times.user + times.system)
        if self._last_cpu is not None and seated:
            wall, cpu = now[0] - self._last_cpu[0], now[1] - self._last_cpu[1]
            if wall > 0:
                self.cpu_per_participant.set(cpu / wall / seated)
        elif not seated:
            self.cpu_per_participant.set(0)
        self._last_cpu = now

    def time_database_writes(self, engine: object) -> None:
        """Time every write statement on this SQLAlchemy (async) engine."""
        sync_engine = engine.sync_engine  # type: ignore[attr-defined]

        @event.listens_for(sync_engine, "before_cursor_execute")
        def before(conn, cursor, statement, parameters, context, executemany):  # type: ignore[no-untyped-def]
            conn.info.setdefault("hearth_started", []).append(time.perf_counter())

        @event.listens_for(sync_engine, "after_cursor_execute")
        def after(conn, cursor, statement, parameters, context, executemany):  # type: ignore[no-untyped-def]
            started = conn.info["hearth_started"].pop()
            if statement.lstrip()[:6].upper() in ("INSERT", "UPDATE", "DELETE"):
                self.db_write_seconds.observe(time.perf_counter() - started)

    async def watch_loop_lag(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            due = loop.time() + LAG_EVERY
            await asyncio.sleep(LAG_EVERY)
            self.loop_lag.observe(max(0.0, loop.time() - due))


class _MediaPackets(Collector):
    """Media packets (SRTP and RTCP) since start, counted by aiortc's DTLS transports."""

    def collect(self) -> Iterable[Metric]:
        family = CounterMetricFamily(
            "hearth_media_packets",
            "Media packets (SRTP and RTCP) since start, by direction",
            labels=["direction"],
        )
        for direction, count in peer.media_packet_totals().items():
            family.add_metric([direction], count)
        yield family


class _DroppedPackets(Collector):
    """Media packets the server dropped since start, by reason (signaling.telemetry)."""

    def collect(self) -> Iterable[Metric]:
        family = CounterMetricFamily(
            "hearth_media_dropped_packets",
            "Media packets dropped since start, by reason: "
            + "; ".join(f"{k}: {v}" for k, v in telemetry.DROP_REASONS.items()),
            labels=["reason"],
        )
        for reason, count in telemetry.dropped_packets.items():
            family.add_metric([reason], count)
        yield family


class _BatchedDatagrams(Collector):
    """Datagrams of voices read in batches on the timer grid (signaling.voice.QuietSockets)."""

    def collect(self) -> Iterable[Metric]:
        family = CounterMetricFamily(
            "hearth_media_batched_datagrams",
            "Voices' datagrams read in batches since start, by clock: quiet (voices nobody may "
            "hear, every 100 ms), paced (while several talk, every 20 ms)",
            labels=["clock"],
        )
        for clock, count in voice.quiet_sockets.reads.items():
            family.add_metric([clock], count)
        yield family


class _Gathered(Collector):
    """Families already collected (the front's and its workers'), for generate_latest."""

    def __init__(self, families: Iterable[Metric]) -> None:
        self._families = list(families)

    def collect(self) -> Iterable[Metric]:
        return self._families


def merge_by_worker(parts: Sequence[tuple[str, Iterable[Metric]]]) -> list[Metric]:
    """One family per name, every sample labelled with the ``worker`` it came from."""
    merged: dict[str, Metric] = {}
    for worker, families in parts:
        for family in families:
            into = merged.get(family.name)
            if into is None:
                into = merged[family.name] = Metric(
                    family.name, family.documentation, family.type, family.unit
                )
            for sample in family.samples:
                labels = {**sample.labels, "worker": worker}
                into.samples.append(sample._replace(labels=labels))
    return list(merged.values())


async def _workers_metrics(urls: Sequence[str]) -> list[tuple[str, Iterable[Metric]]]:
    async def one(session: aiohttp.ClientSession, url: str) -> str | None:
        try:
            async with session.get(f"{url}{WORKER_METRICS_PATH}") as response:
                return await response.text() if response.status == 200 else None
        except (TimeoutError, aiohttp.ClientError):
            return None

    timeout = aiohttp.ClientTimeout(total=5)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        texts = await asyncio.gather(*(one(session, url) for url in urls))
    parts: list[tuple[str, Iterable[Metric]]] = []
    for index, text in enumerate(texts):
        up = GaugeMetricFamily("hearth_worker_up", "Whether the worker answered this scrape")
        up.add_metric([], 0 if text is None else 1)
        found = [] if text is None else list(text_string_to_metric_families(text))
        parts.append((str(index), [up, *found]))
    return parts


METRICS: web.AppKey[Metrics] = web.AppKey("metrics")
# A worker's metrics, on its loopback port, for the front to gather.
WORKER_METRICS_PATH = "/internal/metrics"


def _watch(metrics: Metrics) -> Callable[[web.Application], AsyncIterator[None]]:
    """Observe signaling, time database writes and watch the loop while the app runs."""

    async def watching(app: web.Application) -> AsyncIterator[None]:
        telemetry.watch(metrics)
        database = app.get(DATABASE)
        if database is not None:
            metrics.time_database_writes(database.engine)
        lag = asyncio.get_running_loop().create_task(metrics.watch_loop_lag())
        yield
        lag.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await lag
        telemetry.watch(telemetry.Observer())

    return watching


def add_metrics(app: web.Application, host: str, port: int) -> None:
    """Serve ``/metrics`` on ``host:port`` while ``app`` runs (port 0: no metrics at all);
    in the front of ``--workers N``, with every worker's metrics gathered in."""
    if not port:
        return
    metrics = Metrics()
    app[METRICS] = metrics

    async def scrape(request: web.Request) -> web.Response:
        await metrics.refresh(app)
        supervisor = app.get(SUPERVISOR)
        if supervisor is None:
            body = generate_latest(metrics.registry)
        else:
            urls = [supervisor.base_url(i) for i in range(len(supervisor.ports))]
            workers = await _workers_metrics(urls)
            # The front's own through the same text round trip, so both name families alike.
            own = generate_latest(metrics.registry).decode()
            parts = [("front", text_string_to_metric_families(own)), *workers]
            gathered = CollectorRegistry(auto_describe=False)
            gathered.register(_Gathered(merge_by_worker(parts)))
            body = generate_latest(gathered)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def listen(app: web.Application) -> AsyncIterator[None]:
        listener = web.Application()
        listener.router.add_get("/metrics", scrape)
        runner = web.AppRunner(listener, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, host, port).start()
        log.info("metrics on port %d", port)
        yield
        await runner.cleanup()

    app.cleanup_ctx.append(_watch(metrics))
    app.cleanup_ctx.append(listen)


def add_worker_metrics(app: web.Application) -> None:
    """A worker's metrics at WORKER_METRICS_PATH on its own (loopback) port: the front's
    ``/metrics`` gathers them, so there is one place to scrape."""
    metrics = Metrics()
    app[METRICS] = metrics

    async def scrape(request: web.Request) -> web.Response:
        await metrics.refresh(app)
        body = generate_latest(metrics.registry)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    app.router.add_get(WORKER_METRICS_PATH, scrape)
    app.cleanup_ctx.append(_watch(metrics))

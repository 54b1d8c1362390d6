"""The mixer's jitter buffer alone, in simulated time: what one voice sounds like after it.

The live bench (bench.run) measures the whole path, bots and machine included: on a shared,
loaded machine its figures are dominated by the event loops' own delays. This replays one
speaker's real Opus packets (bench.media's tone bursts, in-band FEC sized for the loss, as a
browser sends once it learns the loss) through the same impairment model as the bench's
bots (bench.impairment: independent loss, 0..jitter uniform delay in FIFO order, a share
held back 45 ms), into a voice buffer pulled every 20 ms, on a clock that is simulated, so
the machine's load does not enter. Measured per buffer:

- continuity: the share of the speaker's tone frames heard within 6 dB of the level sent;
- delay: from a burst's first packet sent to its first loud frame played, p50/p95 (ms);
- cost: CPU microseconds per voice per tick (this one is the machine's).

``before`` is the buffer main had (packets taken one per tick, no timing, no concealment),
loaded from a checkout given with ``--before-tree``; ``after`` is signaling.jitter_buffer.

    python -m bench.jitter_replay --seconds 30 --before-tree /tmp/h10a-base
"""

from __future__ import annotations

import argparse
import heapq
import importlib.util
import json
import random
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from bench import media
from bench.impairment import REORDER_HOLD, Impairment
from signaling.jitter_buffer import JitterBuffer
from signaling.opus_codec import OpusDecoder

TICK = media.FRAME_SECONDS
LOUD = 0.3 / 2  # within 6 dB of the tone's amplitude (bench.media.AMPLITUDE)


def arrivals(
    packets: list[bytes], impairment: Impairment, seed: int
) -> list[tuple[float, int, bytes]]:
    """(arrival, index, payload) after the impaired link; index i was sent at i * 20 ms."""
    rng = random.Random(seed)
    out: list[tuple[float, int, bytes]] = []
    last_at = 0.0
    for i, payload in enumerate(packets):
        if rng.random() < impairment.loss:
            continue
        at = i * TICK + rng.uniform(0.0, impairment.jitter)
        if impairment.reorder and rng.random() < impairment.reorder:
            at = max(at, last_at) + REORDER_HOLD
        else:
            at = max(at, last_at)
            last_at = at
        out.append((at, i, payload))
    out.sort()
    return out


class AfterBuffer:
    def __init__(self) -> None:
        self.buffer = JitterBuffer()

    def put(self, i: int, payload: bytes, at: float) -> None:
        self.buffer.put(i & 0xFFFF, (i * media.FRAME_SAMPLES) & 0xFFFFFFFF, payload, at)

    def pull(self, now: float) -> np.ndarray | None:
        return self.buffer.pull(now)


class BeforeBuffer:
    """main's per-voice buffer: put by sequence, one packet taken per tick, PyAV decode."""

    def __init__(self, module: Any) -> None:
        self.voice = module._Voice()

    def put(self, i: int, payload: bytes, at: float) -> None:
        self.voice.put(i & 0xFFFF, payload)

    def pull(self, now: float) -> np.ndarray | None:
        payload = self.voice.take()
        if payload is None or len(payload) <= 3:
            return None
        pcm: np.ndarray | None = self.voice.decode(payload)
        return pcm


def replay(
    buffer: Any, packets: list[bytes], arrived: list[tuple[float, int, bytes]], seconds: float
) -> dict[str, Any]:
    meter = media.ToneMeter()
    heap = list(arrived)
    heapq.heapify(heap)
    ticks = int(seconds / TICK) + 10
    phase = 0.0137  # ticks do not line up with the sender's clock
    loud = 0
    onsets: list[float] = []
    quiet_run = 99
    cpu = 0.0
    for k in range(ticks):
        now = phase + k * TICK
        started = time.perf_counter()
        while heap and heap[0][0] <= now:
            at, i, payload = heapq.heappop(heap)
            buffer.put(i, payload, at)
        pcm = buffer.pull(now)
        cpu += time.perf_counter() - started
        amplitude = 0.0 if pcm is None else float(meter.amplitudes(pcm)[0])
        if amplitude >= LOUD:
            loud += 1
            if quiet_run >= 3:
                onsets.append(now)
            quiet_run = 0
        else:
            quiet_run += 1
    cycle = media.CYCLE_FRAMES * TICK
    delays = []
    for at in onsets:
        sent = (at // cycle) * cycle  # each cycle's burst starts on a cycle boundary
        if 0 <= at - sent < 0.5:
            delays.append((at - sent) * 1000)
    tone_frames = sum(1 for i in range(len(packets)) if i % media.CYCLE_FRAMES < media.BURST_FRAMES)
    return {
        "continuity": round(min(1.0, loud / tone_frames), 3),
        "delay_ms_p50": round(float(np.percentile(delays, 50)), 1) if delays else None,
        "delay_ms_p95": round(float(np.percentile(delays, 95)), 1) if delays else None,
        "cpu_us_per_tick": round(cpu / ticks * 1e6, 1),
    }


def load_before(tree: Path) -> Any:
    spec = importlib.util.spec_from_file_location("before_audio", tree / "signaling" / "audio.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["before_audio"] = module
    spec.loader.exec_module(module)
    return module


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(prog="python -m bench.jitter_replay")
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--losses", default="0,0.02,0.05,0.10")
    parser.add_argument("--jitter-ms", type=float, default=30)
    parser.add_argument("--reorder", type=float, default=0.01)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--before-tree", type=Path, help="a checkout of main, to compare with")
    args = parser.parse_args(argv)
    before = load_before(args.before_tree) if args.before_tree else None
    OpusDecoder()  # fail early without libopus
    results: dict[str, Any] = {"scenario": vars(args) | {"before_tree": str(args.before_tree)}}
    for loss in (float(x) for x in args.losses.split(",")):
        impairment = Impairment(loss=loss, jitter=args.jitter_ms / 1000, reorder=args.reorder)
        cycle = media.speech_cycle(media.TONES[0], loss)
        packets = cycle * int(args.seconds / (len(cycle) * TICK))
        rows: dict[str, list[dict[str, Any]]] = {"after": [], "before": []}
        for seed in range(args.seeds):
            arrived = arrivals(packets, impairment, seed)
            rows["after"].append(replay(AfterBuffer(), packets, arrived, args.seconds))
            if before is not None:
                rows["before"].append(replay(BeforeBuffer(before), packets, arrived, args.seconds))
        results[f"loss_{loss}"] = {
            name: {
                key: round(float(np.mean([r[key] for r in runs if r[key] is not None])), 3)
                for key in runs[0]
            }
            for name, runs in rows.items()
            if runs
        }
    return results


if __name__ == "__main__":
    print(json.dumps(main(), indent=2))

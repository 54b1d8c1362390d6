"""An impaired network link, in user space, for the bench's bots (both directions).

This machine's kernel has no netem; iptables' ``statistic`` match can drop inside a network
namespace but cannot delay or reorder. So each bot impairs its own link: what it sends is
held back or dropped before SRTP (bench/bots.py wraps its DTLS transport's RTP send), what
it receives is held back or dropped before its inlet. The same code runs for every target,
so Hearth and Janus meet the same network in the same run.

- loss: each packet dropped with this probability (independently);
- jitter: each packet delayed by a uniform random 0..jitter, in order (a FIFO link: a
  packet never overtakes the one before it through jitter alone);
- reorder: with this probability a packet is held back a further ``REORDER_HOLD`` seconds,
  so the next packets overtake it.

RTCP is never impaired (only RTP goes through the link).
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

# A reordered packet arrives this much later than it would have: two 20 ms frames overtake it.
REORDER_HOLD = 0.045


@dataclass(frozen=True)
class Impairment:
    loss: float = 0.0
    jitter: float = 0.0  # seconds
    reorder: float = 0.0

    @property
    def active(self) -> bool:
        return self.loss > 0 or self.jitter > 0 or self.reorder > 0

    @classmethod
    def from_plan(cls, plan: dict[str, Any] | None) -> Impairment:
        plan = plan or {}
        return cls(
            loss=float(plan.get("loss", 0.0)),
            jitter=float(plan.get("jitter_ms", 0.0)) / 1000,
            reorder=float(plan.get("reorder", 0.0)),
        )


class ImpairedLink:
    """Delivers what is put in to ``deliver``, impaired; one per bot and direction."""

    def __init__(
        self, impairment: Impairment, deliver: Callable[..., None], rng: random.Random
    ) -> None:
        self._impairment = impairment
        self._deliver = deliver
        self._rng = rng
        self._last_at = 0.0
        self.dropped = 0
        self.passed = 0

    def put(self, *item: Any) -> None:
        imp = self._impairment
        rng = self._rng
        if imp.loss and rng.random() < imp.loss:
            self.dropped += 1
            return
        self.passed += 1
        if not imp.jitter and not imp.reorder:
            self._deliver(*item)
            return
        loop = asyncio.get_running_loop()
        now = loop.time()
        at = now + (rng.uniform(0.0, imp.jitter) if imp.jitter else 0.0)
        if imp.reorder and rng.random() < imp.reorder:
            at = max(at, self._last_at) + REORDER_HOLD
        else:
            at = max(at, self._last_at)
            self._last_at = at
        loop.call_at(at, self._deliver, *item)


def impair_rtp_sending(dtls: Any, impairment: Impairment, rng: random.Random) -> ImpairedLink:
    """Impair what a DTLS transport sends as RTP (before SRTP); RTCP goes straight out."""
    from aiortc.rtp import is_rtcp

    stock = dtls._send_rtp

    def send_now(data: bytes) -> None:
        # SRTP and sendto never wait: drive the coroutine here, no task per packet.
        sending = stock(data)
        try:
            sending.send(None)
        except (StopIteration, ConnectionError):
            return
        sending.close()

    link = ImpairedLink(impairment, send_now, rng)

    async def send_rtp(data: bytes) -> None:
        if is_rtcp(data):
            await stock(data)
        else:
            link.put(data)

    dtls._send_rtp = send_rtp
    return link

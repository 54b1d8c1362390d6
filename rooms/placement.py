"""Where a circle lives when there are several nodes: pure decisions, time passed in.

A node reports its load to the registry (Redis) every heartbeat; a record older than its
time to live is a node that stopped (killed, paused, cut off). A circle's first join places
it on the least-loaded healthy node; from then on the node holding the circle's lease owns
it, until the lease expires without renewal. One machine's ``--workers N`` without Redis
places by a stable hash instead (``pick_worker``). See docs/architecture.md, "Nodes".
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass

# Load a node carries: one participant costs about as much as this many ms of loop lag.
# Lag is what every voice on the node feels, so a lagging node counts as fuller than its
# head count says; CPU breaks ties between equally loaded nodes.
LAG_MS_PER_PARTICIPANT = 5.0
# Above this smoothed lag a node takes no new circle (it is already refusing newcomers).
OVERLOADED_LAG_MS = 200.0


@dataclass(frozen=True, slots=True)
class NodeLoad:
    """One node as its last heartbeat described it."""

    node_id: str
    # Where other nodes reach it (HTTP and WebSocket), e.g. "http://10.0.0.5:8080".
    url: str
    # The address clients reach its media on (its ICE host candidates).
    media_address: str
    participants: int
    circles: int
    # Share of one core its process used since the last heartbeat (0.0 - n).
    cpu: float
    lag_ms: float
    # When the heartbeat was written (seconds, the registry's clock).
    seen_at: float
    draining: bool = False


def pick_worker(key: str, workers: int) -> int:
    """The worker slot (0 .. workers-1) of one machine's ``--workers N`` that runs a circle
    (``key``: its id), when there is no Redis to hold leases: a stable hash, the same in every
    process and every run, so every link of a circle reaches the same worker."""
    if workers < 1:
        raise ValueError("there must be at least one worker")
    digest = hashlib.sha256(key.encode()).digest()
    return int.from_bytes(digest[:8], "big") % workers


def is_alive(node: NodeLoad, now: float, ttl: float) -> bool:
    """A node whose last heartbeat is younger than the time to live."""
    return now - node.seen_at < ttl


def load_score(node: NodeLoad) -> tuple[float, float, str]:
    """Ordering key: lower is emptier; the id makes the choice the same on every node."""
    return (node.participants + node.lag_ms / LAG_MS_PER_PARTICIPANT, node.cpu, node.node_id)


def choose_node(nodes: Iterable[NodeLoad], now: float, ttl: float) -> NodeLoad | None:
    """The node a new circle goes to: alive, not draining, not overloaded, least loaded.

    When every live node is overloaded the least loaded of them is still chosen (refusing
    is the node's own admission's job); None only when no live node takes circles.
    """
    candidates = [n for n in nodes if is_alive(n, now, ttl) and not n.draining]
    if not candidates:
        return None
    calm = [n for n in candidates if n.lag_ms < OVERLOADED_LAG_MS]
    return min(calm or candidates, key=load_score)


@dataclass(frozen=True, slots=True)
class Lease:
    """A node's hold on a circle: who, with which fencing token, until when (its clock)."""

    circle_id: str
    owner: str
    fence: int
    expires_at: float


def lease_valid(lease: Lease | None, node_id: str, now: float, margin: float) -> bool:
    """Whether ``node_id`` may still act as the circle's owner at ``now``.

    ``margin`` is taken off the end: a node stops a little before its lease runs out, so
    that clocks that drift or a renewal late by a pause cannot make two owners at once.
    """
    return lease is not None and lease.owner == node_id and now < lease.expires_at - margin

"""What one process remembers, in memory only, to hold strangers to the limits.

The rules are rooms/limits.py's; this keeps their values per key and prunes them. Nothing
here is stored or logged: a client address is a dictionary key while it matters and is
forgotten after a quiet spell (BackoffPolicy.forget_after).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from rooms.limits import Backoff, BackoffPolicy, Bucket, failed, forgotten, retry_after, take

# Beyond this many remembered keys, the forgotten ones are swept before adding another.
SWEEP_ABOVE = 10_000


@dataclass(frozen=True, slots=True)
class SessionLimits:
    """Per-socket limits (docs/protocol.md, "Limits"); server/config.py fills them in."""

    # Messages: a burst of message_burst, then message_rate a second.
    message_rate: float = 10.0
    message_burst: float = 40.0
    # Messages refused for the rate in a row (no quiet spell of 10 s) before the close 4429.
    flood_close_after: int = 50
    # Renames: a burst of rename_burst, then one every rename_every_seconds.
    rename_burst: float = 3.0
    rename_every_seconds: float = 30.0
    # Wrong passcodes one socket may send before it is closed (4429).
    passcode_tries_per_socket: int = 3
    # Seconds a lobby place is held by an open socket before it is closed (4431).
    lobby_idle_seconds: float = 1800.0
    # People waiting in one circle's lobby at most.
    lobby_size: int = 50


@dataclass
class PasscodeGuard:
    """Wrong passcodes per circle, per device key and per client address.

    Past a few free tries each key waits longer before the next try is even checked, so a
    4-digit code that fell in under a minute now takes days; a circle gets more free tries
    and a shorter cap, so an attack spread over many addresses slows, but does not lock
    out, the people who know the code.
    """

    per_person: BackoffPolicy = field(default_factory=BackoffPolicy)
    per_circle: BackoffPolicy = field(
        default_factory=lambda: BackoffPolicy(free_failures=20, first_delay=1.0, max_delay=60.0)
    )
    _keys: dict[str, Backoff] = field(default_factory=dict)

    def wait(self, keys: Iterable[str], *, now: float) -> float:
        """Seconds before a passcode may be tried under all these keys (0: now)."""
        known = [self._keys[k] for k in keys if k in self._keys]
        return max((retry_after(backoff, now=now) for backoff in known), default=0.0)

    def record_failure(self, keys: Iterable[str], *, now: float) -> None:
        if len(self._keys) > SWEEP_ABOVE:
            self._sweep(now)
        for key in keys:
            policy = self.per_circle if key.startswith("circle:") else self.per_person
            self._keys[key] = failed(self._keys.get(key, Backoff()), policy, now=now)

    def _sweep(self, now: float) -> None:
        for key, backoff in list(self._keys.items()):
            policy = self.per_circle if key.startswith("circle:") else self.per_person
            if forgotten(backoff, policy, now=now):
                del self._keys[key]

    def __len__(self) -> int:
        return len(self._keys)


@dataclass
class AddressGate:
    """Sockets per client address that have not joined yet (joined ones are the circle's
    business: its capacity and lobby bound them)."""

    limit: int = 50
    _open: dict[str, int] = field(default_factory=dict)

    def enter(self, address: str) -> bool:
        count = self._open.get(address, 0)
        if count >= self.limit:
            return False
        self._open[address] = count + 1
        return True

    def leave(self, address: str) -> None:
        count = self._open.get(address, 0) - 1
        if count > 0:
            self._open[address] = count
        else:
            self._open.pop(address, None)

    def count(self, address: str) -> int:
        return self._open.get(address, 0)


@dataclass
class RateByKey:
    """A token bucket per key (e.g. POST /circle-info per client address), and one for all
    keys together (``total=True``) with ``total_rate`` a second and twice that as a burst."""

    rate: float
    burst: float
    total_rate: float = float("inf")
    _buckets: dict[str, Bucket] = field(default_factory=dict)
    _total: Bucket | None = None

    def allow(self, key: str, *, now: float, total: bool = False) -> bool:
        if total:
            if self.total_rate == float("inf"):
                return True
            capacity = 2 * self.total_rate
            bucket = self._total or Bucket(capacity, now)
            self._total, allowed = take(bucket, rate=self.total_rate, capacity=capacity, now=now)
            return allowed
        if len(self._buckets) > SWEEP_ABOVE:
            # A bucket idle long enough to be full again says nothing: drop it.
            refill = self.burst / self.rate if self.rate else 0.0
            self._buckets = {k: b for k, b in self._buckets.items() if now - b.at < refill}
        bucket = self._buckets.get(key, Bucket(self.burst, now))
        bucket, allowed = take(bucket, rate=self.rate, capacity=self.burst, now=now)
        self._buckets[key] = bucket
        return allowed


@dataclass
class Guards:
    """Everything one process shares between its sockets to keep the limits."""

    limits: SessionLimits = field(default_factory=SessionLimits)
    passcodes: PasscodeGuard = field(default_factory=PasscodeGuard)
    unjoined: AddressGate = field(default_factory=AddressGate)

"""Limits on what a stranger controls: pure rules, time passed in as seconds.

The I/O edge (signaling/session.py, signaling/guard.py) keeps one value per socket, circle,
device or address and asks these functions whether the next thing may happen. Nothing here
reads a clock or keeps state of its own, so a test calls them with plain numbers.

Hand-written rather than `limits`/`pyrate-limiter`/`aiolimiter`: those read the clock
themselves (or sleep), keep their own storage, and would put time and I/O into a decision
that this project keeps pure; a token bucket and a doubling delay are a dozen lines each.
"""

from __future__ import annotations

from dataclasses import dataclass, replace


@dataclass(frozen=True, slots=True)
class Bucket:
    """A token bucket: ``tokens`` left at ``at`` (seconds on any monotonic clock)."""

    tokens: float
    at: float


def full_bucket(capacity: float, now: float) -> Bucket:
    return Bucket(capacity, now)


def take(bucket: Bucket, *, rate: float, capacity: float, now: float) -> tuple[Bucket, bool]:
    """Spend one token if there is one. Returns the new bucket and whether it was allowed.

    Tokens come back at ``rate`` per second up to ``capacity``: a burst of ``capacity``
    messages passes, then ``rate`` a second is sustained.
    """
    elapsed = max(0.0, now - bucket.at)
    tokens = min(capacity, bucket.tokens + elapsed * rate)
    if tokens >= 1.0:
        return Bucket(tokens - 1.0, now), True
    return Bucket(tokens, now), False


@dataclass(frozen=True, slots=True)
class Strikes:
    """Refusals in a row (messages over the rate, wrong passcodes) and the last one's time."""

    count: int = 0
    at: float = 0.0


def strike(strikes: Strikes, *, now: float, forget_after: float) -> Strikes:
    """One more refusal; a quiet spell of ``forget_after`` seconds starts the count anew."""
    if strikes.count and now - strikes.at >= forget_after:
        return Strikes(1, now)
    return Strikes(strikes.count + 1, now)


# --- wrong passcodes: a growing delay -----------------------------------------------------


@dataclass(frozen=True, slots=True)
class Backoff:
    """Wrong passcodes for one key (a circle, a device key, an address): how many, and until
    when the next try is refused without even being checked."""

    failures: int = 0
    blocked_until: float = 0.0
    last_failure: float = 0.0


@dataclass(frozen=True, slots=True)
class BackoffPolicy:
    # Wrong tries that cost nothing; each one past these doubles the wait.
    free_failures: int = 3
    first_delay: float = 1.0
    max_delay: float = 300.0
    # A key that stayed quiet this long is forgotten (kept in memory only).
    forget_after: float = 900.0


def retry_after(backoff: Backoff, *, now: float) -> float:
    """Seconds to wait before another passcode may be tried under this key (0: now)."""
    return max(0.0, backoff.blocked_until - now)


def failed(backoff: Backoff, policy: BackoffPolicy, *, now: float) -> Backoff:
    """A wrong passcode was sent under this key: count it and, past the free tries, block
    for first_delay * 2^(n - free - 1), capped at max_delay."""
    if backoff.failures and now - backoff.last_failure >= policy.forget_after:
        backoff = Backoff()
    failures = backoff.failures + 1
    over = failures - policy.free_failures
    if over <= 0:
        return Backoff(failures, backoff.blocked_until, now)
    delay = min(policy.max_delay, policy.first_delay * 2 ** min(over - 1, 30))
    return Backoff(failures, max(backoff.blocked_until, now + delay), now)


def forgotten(backoff: Backoff, policy: BackoffPolicy, *, now: float) -> bool:
    """True when nothing about this key is worth keeping any more."""
    return now - backoff.last_failure >= policy.forget_after and now >= backoff.blocked_until


def succeeded(backoff: Backoff) -> Backoff:
    """A right passcode clears the count for this key (not for the circle: see guard)."""
    return replace(backoff, failures=0, blocked_until=0.0)

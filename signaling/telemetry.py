"""What signaling tells whoever watches the service (server/metrics.py), without knowing them.

Signaling calls ``observer``'s methods at the few moments worth counting; the default does
nothing, so tests and tools that never install one pay a method call. Nothing passed here
names a person: counts, codes and durations only.
"""

from __future__ import annotations


class Observer:
    def joined(self, seconds: float) -> None:
        """Someone took a seat (or a lobby place), ``seconds`` after their ``join`` arrived."""

    def refused(self, code: str) -> None:
        """A ``join`` was refused with this error code."""

    def media_connected(self, seconds: float) -> None:
        """A media connection completed ICE, ``seconds`` after its offer arrived."""


observer = Observer()


def watch(new: Observer) -> None:
    global observer
    observer = new


# Media packets the server drops, by reason. Counted where each is dropped (one dict
# increment, cheap enough for the audio path), read by server/metrics.py at scrape time.
DROP_REASONS = {
    "inaudible": "a voice nobody may hear now (muted, no floor): dropped, most before SRTP",
    "late": "older than what was already played or forwarded (or its duplicate)",
    "duplicate": "the same packet again, while still waiting in the voice's buffer",
    "overflow": "a voice's or a listener's buffer was full: the oldest packet went",
    "catch_up": "a silent packet skipped to win back the delay arrival jitter left",
    "undecodable": "Opus the decoder refused",
    "send_blocked": "the socket would have blocked: dropped rather than wait",
    "send_error": "the connection had gone when the packet was sent",
}
dropped_packets: dict[str, int] = dict.fromkeys(DROP_REASONS, 0)

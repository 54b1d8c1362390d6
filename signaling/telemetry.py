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

"""Which speaking voice goes in which of a listener's receive slots.

A page offers several receive-only audio tracks (slots). While the voices speaking at once fit
in the slots, each is forwarded unchanged in a slot of its own (no decode, no mix, no encode);
when more speak than there are slots, the circle is mixed instead. A voice keeps its slot for
as long as it speaks, so a listener's browser never sees a voice hop between tracks mid-word,
and one that comes back takes its old slot again if it is free.

The slots are the circle's: slot ``i`` carries the same voice to every listener (except that
voice's own speaker, who gets nothing in it), so ``slots`` is the fewest any listener offered.

Pure: names in, a mapping out.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence


def assign_slots(
    speaking: Sequence[str],
    slots: int,
    current: Mapping[str, int],
    last_slot: Mapping[str, int] | None = None,
) -> dict[str, int] | None:
    """Each voice of ``speaking`` (in the order they started) to a slot in ``range(slots)``,
    or None when they do not fit (mix) or nobody speaks. ``current``: the assignment so far;
    ``last_slot``: where each voice was last placed, tried first for a voice coming back."""
    if not speaking or len(speaking) > slots:
        return None
    placed = {voice: slot for voice, slot in current.items() if voice in speaking and slot < slots}
    free = [slot for slot in range(slots) if slot not in placed.values()]
    for voice in speaking:
        if voice in placed:
            continue
        wanted = (last_slot or {}).get(voice)
        slot = wanted if wanted in free else free[0]
        free.remove(slot)
        placed[voice] = slot
    return placed

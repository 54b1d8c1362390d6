"""Summarise a py-spy raw profile: the functions with the most samples, self and inclusive.

python -m bench.profile_summary /tmp/hearth.txt
"""

from __future__ import annotations

import collections
import sys


def main(path: str, top: int = 25) -> None:
    own: collections.Counter[str] = collections.Counter()
    inclusive: collections.Counter[str] = collections.Counter()
    total = 0
    with open(path) as lines:
        for line in lines:
            stack, _, count = line.rstrip().rpartition(" ")
            n = int(count)
            total += n
            frames = stack.split(";")
            own[frames[-1]] += n
            for frame in set(frames):
                inclusive[frame] += n
    print(f"{total} samples")
    for label, counter in (("self", own), ("incl", inclusive)):
        for frame, n in counter.most_common(top):
            print(f"{label} {100 * n / total:5.1f}% {frame[:120]}")


if __name__ == "__main__":
    main(sys.argv[1])

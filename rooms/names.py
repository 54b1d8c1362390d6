"""Display names: what may be shown, and who it must not look like.

A name is the only thing a person is known by, so two rules keep it honest:

- it must show something: a name made only of invisible characters (format characters,
  combining marks, fillers such as U+3164) is refused. The zero-width joiner and non-joiner
  are allowed *inside* a name, because Persian, Indic scripts and emoji sequences need them;
  other format characters (bidi overrides, zero-width spaces) are refused anywhere, as they
  disguise a name rather than write it.
- it must not pass for a present host's or co-host's: names are compared by their Unicode
  TR39 skeleton ("Ana" with a Cyrillic A, U+0410, and "Ana" share one). Such a name is refused, not
  labelled: a label beside a lookalike still leaves the lookalike in the list, and a person
  in a fragile moment should never have to read small print to know who the host is.

The skeleton comes from ``disarm`` (MIT; a Rust core with the Unicode 15 confusables table;
``skeleton_key`` is a fixed point, folds case and strips invisibles; about 15 us a call).
Considered: ``confusables`` (last release 2021, no skeleton: a greedy pairwise matcher
whose ``normalize`` grows as the product of each letter's alternatives), and
``confusable-homoglyphs`` (finds mixed scripts in one string; does not compare two names);
PyICU's SpoofChecker is the reference but PyPI has no wheel for it. disarm deliberately
does not fold ``m`` to ``rn``; that pair is left to the hosts' eyes.
"""

from __future__ import annotations

import unicodedata

from disarm import skeleton_key

from rooms import errors
from rooms.errors import RoomError

MAX_DISPLAY_NAME = 40

# Joiners that scripts and emoji need between visible characters.
JOINERS = frozenset({"\u200c", "\u200d"})
# Letters that draw nothing (Hangul fillers, the blank Braille pattern, Khmer inherent vowels).
BLANK_LETTERS = frozenset({"\u115f", "\u1160", "\u3164", "\uffa0", "\u2800", "\u17b4", "\u17b5"})
# Categories that draw nothing on their own: format, marks, separators.
INVISIBLE_CATEGORIES = frozenset({"Cf", "Mn", "Me", "Zs", "Zl", "Zp"})
REFUSED_CATEGORIES = frozenset({"Cc", "Cf", "Co", "Cs", "Cn"})


def clean_display_name(raw: str) -> str:
    """The name as shown, or RoomError if there is nothing sensible to show.

    Whitespace runs fold to one space; control and format characters (including bidi
    overrides that could disguise a name) are refused rather than silently dropped.
    """
    name = " ".join(raw.split())
    if not name:
        raise RoomError(errors.INVALID_DISPLAY_NAME, "Please choose a name to be shown.")
    if len(name) > MAX_DISPLAY_NAME:
        raise RoomError(
            errors.INVALID_DISPLAY_NAME,
            f"A name can be at most {MAX_DISPLAY_NAME} characters.",
        )
    if any(ch not in JOINERS and unicodedata.category(ch) in REFUSED_CATEGORIES for ch in name):
        raise RoomError(errors.INVALID_DISPLAY_NAME, "The name contains characters not allowed.")
    if not any(is_visible(ch) for ch in name):
        raise RoomError(errors.INVALID_DISPLAY_NAME, "Please choose a name that can be seen.")
    return name


def is_visible(ch: str) -> bool:
    return ch not in BLANK_LETTERS and unicodedata.category(ch) not in INVISIBLE_CATEGORIES


def skeleton(name: str) -> str:
    """The TR39 skeleton (digits folded too: "Ana1" and "Anal" look alike), case folded."""
    return skeleton_key(name, digit_policy="tr39")


def poses_as(name: str, others: list[str]) -> bool:
    """True when ``name`` looks like one of ``others`` (moderators' names), the very same
    name included: a second "Ana" beside the host Ana is as confusing as a lookalike."""
    key = skeleton(name)
    return bool(key) and any(skeleton(other) == key for other in others)

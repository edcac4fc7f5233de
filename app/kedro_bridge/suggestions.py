"""Bounded "did you mean" hints for unknown names in a run request.

``difflib.get_close_matches`` scores every candidate with a SequenceMatcher
(~10-50 us each): 1,000 unknown node names against a 2,000-node pipeline cost
68 s. Two bounds make a request's suggestion work independent of how many names
it gets wrong, and linear in the project's size:

- only the first ``MAX_NAMES_WITH_HINTS`` unknown names of a request get hints;
  every later one is still reported, without a hint;
- each hint scores at most ``MAX_SCORED`` candidates with difflib: those sharing
  the most character pairs with the name, found with set intersections.

Pure Python, no framework; not thread-safe (one ``Suggestions`` per request).
"""

from __future__ import annotations

import difflib
import heapq
from collections.abc import Collection

MAX_NAMES_WITH_HINTS = 10  # per request
MAX_SCORED = 50  # candidates per hint that difflib scores
MAX_HINTS = 3  # close matches per name, as Kedro's own get_close_matches gives
CUTOFF = 0.6  # similarity a match needs, as Kedro's


class Suggestions:
    """Hints for one request: ``close_matches`` for the first ``limit`` names asked
    about, nothing for the rest."""

    def __init__(self, limit: int = MAX_NAMES_WITH_HINTS) -> None:
        self._left = limit

    def for_name(self, name: str, known: Collection[str]) -> list[str]:
        if self._left <= 0:
            return []
        self._left -= 1
        return close_matches(name, known)


def close_matches(name: str, known: Collection[str]) -> list[str]:
    """Up to ``MAX_HINTS`` names of ``known`` closest to ``name``, best first, as
    difflib ranks them among the ``MAX_SCORED`` likeliest. Deterministic: the same
    names give the same hints whatever the order of ``known``."""
    candidates = sorted(known)
    if len(candidates) > MAX_SCORED:
        pairs = _pairs(name)
        # nlargest keeps the first of equal keys, so sorting first makes ties stable.
        candidates = heapq.nlargest(MAX_SCORED, candidates, key=lambda c: len(pairs & _pairs(c)))
    return difflib.get_close_matches(name, candidates, n=MAX_HINTS, cutoff=CUTOFF)


def _pairs(text: str) -> set[str]:
    """The character pairs of ``text`` (its single character when it has one)."""
    return {text[i : i + 2] for i in range(max(1, len(text) - 1))}

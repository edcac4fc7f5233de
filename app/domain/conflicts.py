"""FootprintIndex: does a footprint conflict with any of many, in one lookup per key.

``Footprint.conflicts_with`` compares two footprints; asking it of every pair of
queued runs is quadratic in the queue (1,000 queued runs made a ``/metrics``
scrape take a second on the event loop). The index holds the union of many
footprints, so one question costs the size of the footprint asked about (each
key by its length), never the number of footprints indexed. It answers exactly
what ``any(footprint.conflicts_with(other) for other in indexed)`` answers,
directory containment included.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from app.domain.runs import Footprint


def _directories(key: str) -> Iterator[str]:
    """Every ``key[:i]`` with ``key[i] == "/"``: what ``key`` lies below, as
    ``runs._contains`` reads it (a parent matches with its trailing slashes stripped)."""
    start = key.find("/")
    while start != -1:
        yield key[:start]
        start = key.find("/", start + 1)


class _KeySet:
    """Keys, indexed for "does any of these keys overlap one of them" (equal, or one a
    directory the other lies below)."""

    def __init__(self) -> None:
        self._keys: set[str] = set()
        self._as_parents: set[str] = set()  # each key with trailing slashes stripped
        self._directories: set[str] = set()  # every directory some key lies below

    def add(self, keys: Iterable[str]) -> None:
        for key in keys:
            self._keys.add(key)
            self._as_parents.add(key.rstrip("/"))
            self._directories.update(_directories(key))

    def overlaps(self, keys: Iterable[str]) -> bool:
        return any(
            key in self._keys
            or key.rstrip("/") in self._directories  # key holds an indexed key
            or any(parent in self._as_parents for parent in _directories(key))  # key is held
            for key in keys
        )


class FootprintIndex:
    """The union of footprints added so far. Not thread-safe: one owner."""

    def __init__(self, footprints: Iterable[Footprint] = ()) -> None:
        self._reads = _KeySet()
        self._writes = _KeySet()
        self._versioned_writes = _KeySet()
        for footprint in footprints:
            self.add(footprint)

    def add(self, footprint: Footprint) -> None:
        self._reads.add(footprint.reads)
        self._writes.add(footprint.writes)
        self._versioned_writes.add(footprint.versioned_writes)

    def conflicts_with(self, footprint: Footprint) -> bool:
        """Whether ``footprint`` conflicts with any footprint added (the rule of
        ``Footprint.conflicts_with``, spread over the union)."""
        return (
            self._reads.overlaps(footprint.writes)
            or self._writes.overlaps(footprint.writes)
            or self._writes.overlaps(footprint.reads)
            or self._reads.overlaps(footprint.versioned_writes)
            or self._versioned_writes.overlaps(footprint.reads)
        )

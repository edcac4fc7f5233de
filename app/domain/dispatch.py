"""Conflict-aware dispatch: which queued runs may start now.

A queued run may start when a slot is free and it conflicts with no running run
and no run queued before it. So runs that touch different files run in
parallel, and among runs that touch the same files submission order is kept (a
retry counts as submitted when it was requeued).
This is pure bookkeeping; the service owns the I/O.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterator
from dataclasses import dataclass, field

from app.domain.conflicts import FootprintIndex
from app.domain.runs import Footprint, Run, RunSpec


@dataclass(frozen=True, order=True)
class QueuedRun:
    # What Kedro gets for the run's next attempt, and the queue's order (the only field
    # compared). A retry has a fresh, later save version, so it queues behind every run
    # submitted meanwhile: among runs that touch the same files, the one that runs last
    # then has the largest save version, which is the one Kedro loads as "latest".
    save_version: str
    run_id: str = field(compare=False)
    footprint: Footprint = field(compare=False)
    spec: RunSpec = field(compare=False, default_factory=RunSpec)
    attempts: int = field(compare=False, default=0)  # attempts made so far

    @classmethod
    def of(cls, run: Run) -> QueuedRun:
        return cls(run.current_save_version, run.run_id, run.footprint, run.spec, run.attempts)


class DispatchQueue:
    """Queued and running runs with their footprints. Not thread-safe: one owner."""

    def __init__(self) -> None:
        self._queued: list[QueuedRun] = []
        # The ids of _queued: a run on a listed page that is not queued (most are) costs
        # no walk of the queue to find out it waits for nothing.
        self._queued_ids: set[str] = set()
        self._running: dict[str, Footprint] = {}

    def enqueue(self, run: QueuedRun) -> None:
        bisect.insort(self._queued, run)
        self._queued_ids.add(run.run_id)

    def remove_queued(self, run_id: str) -> bool:
        if run_id not in self._queued_ids:
            return False
        self._queued_ids.discard(run_id)
        for index, run in enumerate(self._queued):
            if run.run_id == run_id:
                del self._queued[index]
                return True
        return False

    def mark_running(self, run: QueuedRun) -> None:
        self.remove_queued(run.run_id)
        self._running[run.run_id] = run.footprint

    def finish(self, run_id: str) -> bool:
        return self._running.pop(run_id, None) is not None

    def is_queued(self, run_id: str) -> bool:
        return run_id in self._queued_ids

    def is_running(self, run_id: str) -> bool:
        return run_id in self._running

    @property
    def queued_count(self) -> int:
        return len(self._queued)

    @property
    def running_count(self) -> int:
        return len(self._running)

    def can_start_new(self, footprint: Footprint, free_slots: int) -> bool:
        """Whether a run submitted now may start at once: a slot is free, no queued run
        could take it first, and the new run conflicts with no queued or running run."""
        if free_slots <= 0 or self.startable(free_slots):
            return False
        everything = FootprintIndex(self._running.values())
        for run in self._queued:
            everything.add(run.footprint)
        return not everything.conflicts_with(footprint)

    @property
    def blocked_count(self) -> int:
        """Queued runs that wait for another run (not merely for a free slot)."""
        return sum(1 for _, blocked in self._in_order() if blocked)

    def startable(self, free_slots: int) -> list[QueuedRun]:
        """Up to ``free_slots`` runs that may start now, in submission order."""
        chosen: list[QueuedRun] = []
        for run, blocked in self._in_order():
            if len(chosen) >= free_slots:
                break
            if not blocked:
                chosen.append(run)
        return chosen

    def _in_order(self) -> Iterator[tuple[QueuedRun, bool]]:
        """Each queued run in submission order, with whether it waits for a run it
        conflicts with: a running one or one queued before it. One pass over the queue,
        linear in the footprints' sizes (an index of those seen, not a pairwise check).
        A run chosen to start is among those seen, so runs after it wait for it too."""
        seen = FootprintIndex(self._running.values())
        for run in self._queued:
            yield run, seen.conflicts_with(run.footprint)
            seen.add(run.footprint)

    def conflicting(self, footprint: Footprint) -> list[str]:
        """Running and queued runs that a new run with ``footprint`` would wait for."""
        running = [rid for rid, fp in self._running.items() if footprint.conflicts_with(fp)]
        queued = [run.run_id for run in self._queued if footprint.conflicts_with(run.footprint)]
        return running + queued

    def waiting_for(self, run_id: str) -> list[str]:
        """The runs a queued run waits for: running or earlier-queued runs it conflicts with."""
        if run_id not in self._queued_ids:
            return []
        for index, run in enumerate(self._queued):
            if run.run_id == run_id:
                running = [
                    other for other, fp in self._running.items() if run.footprint.conflicts_with(fp)
                ]
                earlier = [
                    other.run_id
                    for other in self._queued[:index]
                    if run.footprint.conflicts_with(other.footprint)
                ]
                return running + earlier
        return []

"""Retention: how long finished runs (with their events, logs and outputs) and expired
Idempotency-Keys are kept, and the prune that removes the rest.

A prune never touches a queued, running or cancelling run: the store removes only
runs in a terminal state, whatever the caller asks. It works in bounded batches, one
transaction each, so a big prune never holds the store's write lock for long.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from app.domain.runs import utcnow

logger = logging.getLogger("kedro_runs.retention")

PRUNE_BATCH = 500  # runs (or keys) per transaction


@dataclass(frozen=True)
class PruneCounts:
    """What a prune removed (or, in a dry run, would remove)."""

    runs: int = 0
    events: int = 0
    logs: int = 0
    keys: int = 0

    def __add__(self, other: PruneCounts) -> PruneCounts:
        return PruneCounts(
            self.runs + other.runs,
            self.events + other.events,
            self.logs + other.logs,
            self.keys + other.keys,
        )

    def describe(self, *, dry_run: bool = False) -> str:
        verb = "would prune" if dry_run else "pruned"
        return (
            f"{verb} {self.runs} finished run(s) ({self.events} event(s), {self.logs} log "
            f"line(s)) and {self.keys} expired idempotency key(s)"
        )


class RunPruner(Protocol):
    """The store's side of a prune. Blocks; may be called from any one thread at a time
    (it changes only finished runs and expired keys, which no other write touches)."""

    def prune_batch(
        self, finished_before: datetime | None, keys_before: datetime, limit: int
    ) -> PruneCounts:
        """In one transaction: remove up to ``limit`` runs in a terminal state that
        finished before ``finished_before`` (none when None), with their events, logs,
        pipelines and keys, and up to ``limit`` keys created before ``keys_before``."""
        ...

    def count_prunable(
        self, finished_before: datetime | None, keys_before: datetime
    ) -> PruneCounts:
        """What ``prune_batch`` would remove, all batches together; removes nothing."""
        ...


@dataclass(frozen=True)
class RetentionPolicy:
    """``retention_days``: how long a finished run is kept after it finished; 0 keeps
    runs forever. ``key_ttl_seconds``: an Idempotency-Key is kept while it holds."""

    retention_days: float
    key_ttl_seconds: float

    def runs_finished_before(self, now: datetime) -> datetime | None:
        return now - timedelta(days=self.retention_days) if self.retention_days > 0 else None

    def keys_created_before(self, now: datetime) -> datetime:
        return now - timedelta(seconds=self.key_ttl_seconds)


def prune(
    store: RunPruner,
    policy: RetentionPolicy,
    now: datetime,
    *,
    batch: int = PRUNE_BATCH,
    should_stop: Callable[[], bool] = lambda: False,
) -> PruneCounts:
    """Remove what ``policy`` no longer keeps at ``now``, one batch per transaction,
    until nothing is left (or ``should_stop`` says so, checked between batches)."""
    finished_before = policy.runs_finished_before(now)
    keys_before = policy.keys_created_before(now)
    total = PruneCounts()
    while not should_stop():
        done = store.prune_batch(finished_before, keys_before, batch)
        total += done
        if done.runs < batch and done.keys < batch:
            break
    return total


async def prune_periodically(
    store: RunPruner, policy: RetentionPolicy, interval_seconds: float
) -> None:
    """Prune at once, then every ``interval_seconds``, on a thread of its own, until
    cancelled. A prune that fails is logged and tried again at the next interval.
    On cancellation, waits for the batch under way (never long) so the store can close."""
    stopping = threading.Event()
    executor = ThreadPoolExecutor(1, thread_name_prefix="run-store-pruner")
    loop = asyncio.get_running_loop()
    try:
        while True:
            job = loop.run_in_executor(
                executor,
                lambda: prune(store, policy, utcnow(), should_stop=stopping.is_set),
            )
            try:
                pruned = await asyncio.shield(job)
            except asyncio.CancelledError:
                stopping.set()
                with contextlib.suppress(Exception):
                    await job
                raise
            except Exception:
                logger.exception("pruning the run store failed; trying again later")
            else:
                if pruned.runs or pruned.keys:
                    logger.info("retention: %s", pruned.describe())
            await asyncio.sleep(interval_seconds)
    finally:
        stopping.set()
        executor.shutdown(wait=False)

"""RunLedger: record, then announce.

Every fact about a run goes through here: first the store commits it (on the one writer
thread, so writes keep their order), then, only if it applied, it is announced: readers
waiting on the run (``event_signal``, long polls), followers of the state-change feed
(which the store keeps) and the hooks
(metrics, webhooks, plugins). So nothing is announced that a crash could take back, and
nothing recorded goes unannounced by the process that recorded it.

Reads go to a few reader threads. Event-loop side only, except the threads it owns.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import TypeVar

from app.domain.callers import ANONYMOUS, Caller
from app.domain.policy import error_data
from app.domain.ports import (
    AcknowledgeAttempt,
    AppendEvent,
    AppendLogs,
    IdempotencyKey,
    RecordOutputs,
    RunHooks,
    RunStore,
    StoreWrite,
    Transition,
)
from app.domain.runs import TERMINAL_STATUSES, EventType, Run
from app.domain.signals import ChangeSignal, FinishWaiters, StateChange
from app.domain.tracking import RunBook

logger = logging.getLogger("kedro_runs.service")

T = TypeVar("T")

ANY_RUN_ENDED = "*ended"  # change-signal key: some run reached a terminal state
FEED = "feed"  # change_signal's key
_FORGET_AFTER_SECONDS = 30.0


def logs_key(run_id: str) -> str:
    """The change-signal key of a run's log (its events use the run id itself)."""
    return f"logs:{run_id}"


class RunLedger:
    """The store, its threads, and who hears of what it recorded."""

    def __init__(self, store: RunStore, hooks: RunHooks) -> None:
        self.store = store
        self._hooks = hooks
        self._writer = ThreadPoolExecutor(1, thread_name_prefix="run-store-writer")
        self._readers = ThreadPoolExecutor(4, thread_name_prefix="run-store-reader")
        self._book = RunBook()  # pipelines, owner, start of each unfinished run
        self.event_signal = ChangeSignal()  # keyed by run id: new events were recorded
        self.finish_waiters = FinishWaiters()  # long polls
        self.change_signal = ChangeSignal()  # key FEED: a run's state changed
        self._finish_listeners: list[Callable[[str], None]] = []

    def on_finished(self, listener: Callable[[str], None]) -> None:
        """Call ``listener(run_id)`` once a run's end is recorded and announced."""
        self._finish_listeners.append(listener)

    def close(self) -> None:
        """Finish what the threads hold, then stop them."""
        self._writer.shutdown(wait=True)
        self._readers.shutdown(wait=True)

    # -- threads --------------------------------------------------------------

    async def read(self, call: Callable[[], T]) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._readers, call)

    async def on_writer(self, call: Callable[[], T]) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._writer, call)

    # -- what is known of unfinished runs ---------------------------------------

    def track(self, run: Run) -> None:
        """Learn what is not yet known of ``run`` (queued, or found active)."""
        self._book.track_recovered(run)

    def owner_of(self, run_id: str) -> str:
        return self._book.owner_of(run_id, ANONYMOUS.name)

    # -- record, then announce --------------------------------------------------

    async def insert(
        self,
        run: Run,
        then: Sequence[StoreWrite] = (),
        key: IdempotencyKey | None = None,
        key_live_since: datetime | None = None,
    ) -> Run:
        """Commit ``run`` as queued, with ``then`` (a claim) in the same transaction, and
        announce it; the run as stored (with its save version). Raises what the store
        raises (IdempotencyKeyTaken too), with nothing announced."""
        run = await self.on_writer(
            lambda: self.store.insert_run(run, then, key, key_live_since=key_live_since)
        )
        self._announce_accepted(run, started=bool(then))
        return run

    def _announce_accepted(self, run: Run, *, started: bool) -> None:
        run_id, owner, at = run.run_id, run.owner, run.queued_at
        self._book.track(run_id, list(run.spec.pipeline_names), owner)
        logger.info("run %s queued", run_id, extra={"run_id": run_id})
        self._hooks.run_submitted(run_id, list(run.spec.pipeline_names), at)
        self._hooks.event_recorded(run_id, str(EventType.RUN_QUEUED), at, None)
        if started:
            self._hooks.event_recorded(run_id, str(EventType.RUN_STARTED), at, None)
        self.event_signal.notify(run_id)
        self.change_signal.notify(FEED)

    def announce_started(self, run_id: str, pipelines: list[str], at: datetime) -> None:
        """A claimed run was handed to a worker."""
        self._book.started(run_id, at)
        self._hooks.run_started(run_id, pipelines, at)

    async def record(self, writes: Sequence[StoreWrite]) -> list[bool]:
        """Commit ``writes`` in one transaction; announce each that applied. Returns which
        applied. Raises what the store raises, with nothing announced."""
        if not writes:
            return []
        applied = await self.on_writer(lambda: self.store.write(writes))
        for write, ok in zip(writes, applied, strict=True):
            if ok:
                self._announce(write)
        return applied

    async def commit(
        self,
        call: Callable[[], tuple[T, list[StoreWrite]]],
        prepare: Callable[[T], None] | None = None,
    ) -> T:
        """Run ``call`` (a store transaction that returns its result and the writes it
        applied) on the writer thread, then ``prepare(result)``, then announce the
        writes."""
        result, applied = await self.on_writer(call)
        if prepare is not None:
            prepare(result)
        for write in applied:
            self._announce(write)
        return result

    def heard(self, run_id: str, *, ended: bool) -> None:
        """Another process recorded something for ``run_id`` (``ended``: its end): wake
        this process's readers of it."""
        self.event_signal.notify(run_id)
        self.event_signal.notify(logs_key(run_id))
        if ended:
            # Tracked when accepted here but ended elsewhere, it would stay for good. Not
            # now: the notice of an end recorded here may come before this process has
            # announced it (hooks are told the run's pipelines from the book).
            asyncio.get_running_loop().call_later(_FORGET_AFTER_SECONDS, self._book.forget, run_id)
            for listener in self._finish_listeners:
                listener(run_id)
            self.finish_waiters.wake(run_id)
            self.event_signal.notify(ANY_RUN_ENDED)

    def _announce(self, write: StoreWrite) -> None:
        if isinstance(write, AppendLogs):
            self.event_signal.notify(logs_key(write.run_id))
            return
        if isinstance(write, RecordOutputs | AcknowledgeAttempt):
            return
        self.event_signal.notify(write.run_id)
        node = write.node if isinstance(write, AppendEvent) else None
        event = write.type if isinstance(write, AppendEvent) else write.event
        self._hooks.event_recorded(write.run_id, str(event), write.at, node)
        if isinstance(write, Transition):
            self.change_signal.notify(FEED)
            self.event_signal.notify(logs_key(write.run_id))  # log followers may end
            if write.target in TERMINAL_STATUSES:
                self._announce_finished(write)

    def _announce_finished(self, move: Transition) -> None:
        tracked = self._book.forget(move.run_id)
        logger.info("run %s %s", move.run_id, move.target, extra={"run_id": move.run_id})
        error = error_data(move.error) if move.error else None
        self._hooks.run_finished(
            move.run_id,
            tracked.pipelines or [],
            str(move.target),
            tracked.started_at,
            move.at,
            {k: str(v) for k, v in error.items()} if error else None,
        )
        for listener in self._finish_listeners:
            listener(move.run_id)
        self.finish_waiters.wake(move.run_id)
        self.event_signal.notify(ANY_RUN_ENDED)

    # -- the state-change feed ---------------------------------------------------

    async def changes_after(
        self, after: int, caller: Caller, limit: int = 1000
    ) -> list[StateChange]:
        """The state changes with ids after ``after`` of the runs ``caller`` may see: the
        store's durable feed, one for every replica of the service."""
        owner = None if caller.admin else caller.name
        return await self.read(lambda: self.store.changes_after(after, limit, owner))

    async def last_change_id(self) -> int:
        return await self.read(self.store.last_change_id)

    def wake_all(self) -> None:
        """Shutdown: every long poll and stream re-reads now, and ends."""
        self.finish_waiters.wake()
        self.event_signal.notify_all()
        self.change_signal.notify_all()

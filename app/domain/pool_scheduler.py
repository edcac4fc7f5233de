"""PoolScheduler: what every scheduler does for the worker pool of its own process.

It hands claimed runs to the pool, applies the pool's reports in the order they came (the
supervisor loop, under one ``asyncio.Lock``), enforces cancel grace periods and running
runs' timeouts, and stops the pool at shutdown. Where the queue lives, and so how runs
are chosen, claimed and recovered, is the subclass's: ``LocalScheduler`` keeps it in
memory, ``ClusterScheduler`` in the database shared by every replica.

A run is marked running in the store before a worker is told to execute it, and the
worker runs no node until its acknowledgement is recorded, so a crash can lose neither
the run nor the fact that it may have started, and tells a run that started from one no
worker took. What each report, loss or timeout becomes is decided by ``policy``.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import replace

from app import faults
from app.domain import reports
from app.domain.deadlines import Deadlines
from app.domain.dispatch import QueuedRun
from app.domain.ledger import ANY_RUN_ENDED, RunLedger
from app.domain.policy import (
    NOT_RECORDED_TYPE,
    SHUTDOWN_DETAIL,
    Attempt,
    not_recorded,
    write_for_report,
)
from app.domain.ports import (
    AcknowledgeAttempt,
    RunAssignment,
    RunExecutor,
    StoreWrite,
    Transition,
)
from app.domain.runs import EventType, FailureReason, RunStatus, utcnow
from app.domain.supervisor import STOP, supervise
from app.errors import ServiceUnavailable

logger = logging.getLogger("kedro_runs.service")


class PoolScheduler:
    """The part of a scheduler that drives this process's pool. Subclasses provide
    ``_dispatch``, ``_recover_own``, ``_requeued``, ``_on_timeout`` and the port's
    accept/cancel/waiting questions."""

    def __init__(
        self,
        ledger: RunLedger,
        executor: RunExecutor,
        *,
        cancel_grace_seconds: float,
        default_timeout_seconds: float,
    ) -> None:
        self._ledger = ledger
        self._executor = executor
        self._lock = asyncio.Lock()
        self._inbox: asyncio.Queue[reports.Report] = asyncio.Queue()
        self._supervisor: asyncio.Task[None] | None = None
        self.stopping = False
        self.recheck_seconds: float | None = None
        self._draining = False  # shutting down: no new runs, no dispatch
        self._stop_now = False  # stop_now(): shutting down without waiting for the store
        self._drain_deadline: float | None = None  # loop time the drain ends at
        self._active: dict[str, QueuedRun] = {}  # runs handed to a worker, with their attempt
        self._unrecordable: dict[str, str] = {}  # runs whose reports the store refused: why
        self._deadlines = Deadlines(
            self._active.__contains__,
            executor,
            cancel_grace_seconds=cancel_grace_seconds,
            default_timeout_seconds=default_timeout_seconds,
            on_timeout=self._on_timeout,
        )
        ledger.on_finished(self._deadlines.run_ended)

    # -- for subclasses -------------------------------------------------------------

    async def _dispatch(self) -> None:
        """Start every queued run that may start now. Called with the lock held."""
        raise NotImplementedError

    async def _recover_own(self, detail: str, reason: FailureReason) -> None:
        """End (or requeue) the runs this process's pool had, its workers being gone."""
        raise NotImplementedError

    def _requeued(self, queued: QueuedRun, save_version: str | None) -> None:
        """``queued``'s lost attempt was recorded as a requeue, under ``save_version``
        (None: the store gave it one that could not be read back yet)."""
        raise NotImplementedError

    def _on_timeout(self, run_id: str, limit_seconds: float) -> None:
        """The run's timeout (counted from submission) has passed."""
        raise NotImplementedError

    # -- lifecycle -----------------------------------------------------------

    async def _start_pool(self) -> None:
        """Start the pool and the supervisor; a first dispatch follows."""
        await self._executor.start(self._inbox.put_nowait)
        self._supervisor = asyncio.create_task(
            supervise(
                self._inbox,
                self._lock,
                self._apply_reports,
                self._dispatch,
                self._not_recordable,
                abandon=lambda: self._stop_now,
            ),
            name="run-supervisor",
        )
        self._inbox.put_nowait(reports.CapacityChanged())

    async def stop(self, drain_seconds: float = 0.0) -> None:
        """Take no new runs and start no queued ones; give running runs up to
        ``drain_seconds`` to finish; then stop workers. Runs still active end
        ``failed(interrupted)`` (or are requeued); queued runs stay queued. Reports that
        arrived before the workers stopped are recorded first."""
        await self.drain(drain_seconds)
        self.stopping = True
        self._ledger.wake_all()
        self._deadlines.cancel_all()
        await self._executor.stop()
        if self._supervisor is not None:
            self._inbox.put_nowait(STOP)
            await self._supervisor
        async with self._lock:
            try:
                await self._recover_own(SHUTDOWN_DETAIL, FailureReason.INTERRUPTED)
            except ServiceUnavailable:
                if not self._stop_now:
                    raise
                logger.error("the run store cannot write: active runs are left to the next start")

    async def drain(self, seconds: float) -> None:
        """Take no new runs (submissions get 503) and start no queued ones; wait until no
        run of this pool is running, or ``seconds`` have passed since the first call (a
        later call, such as ``stop``'s, does not extend the budget)."""
        self._draining = True
        loop = asyncio.get_running_loop()
        if self._drain_deadline is None:
            self._drain_deadline = loop.time() + seconds
        while self._active and loop.time() < self._drain_deadline:
            await self._ledger.event_signal.wait(ANY_RUN_ENDED, 0.1)

    def end_drain(self) -> None:
        """Spend the rest of the drain budget now: take no new runs; a drain under way
        returns within its next poll (0.1 s), a later ``drain`` or ``stop`` waits for no
        run, and long polls answer now. Call it on the event loop's thread."""
        self._draining = True
        self._drain_deadline = asyncio.get_running_loop().time()
        self._ledger.finish_waiters.wake()

    def stop_now(self) -> None:
        """``end_drain``, and a stop that no longer waits for the store: reports it cannot
        record (its disk is full) are dropped, and the runs they were about stay active in
        the store, for the next start to recover as after a crash."""
        self._stop_now = True
        self.end_drain()

    @property
    def accepting(self) -> bool:
        return not self._draining

    # -- this pool's gauges ---------------------------------------------------------

    @property
    def ready_workers(self) -> int:
        return self._executor.ready_workers

    async def workers_available(self) -> int:
        """This pool's ready workers, once the store answers (a ready service that cannot
        reach its store would take requests it can only refuse)."""
        await self._ledger.read(self._ledger.store.last_change_id)
        return self._executor.ready_workers

    @property
    def busy_workers(self) -> int:
        return len(self._active)

    @property
    def idle_workers(self) -> int:
        return self._executor.idle_slots()

    def _free_slots(self) -> int:
        # A worker turns idle before its run's end is applied; until then that run still
        # holds its slot here, so a new run cannot overtake a queued one that only
        # waited for it.
        free = min(self._executor.idle_slots(), self._executor.ready_workers - len(self._active))
        return max(0, free)

    # -- cancel ----------------------------------------------------------------------

    async def _ask_to_stop(self, run_id: str) -> bool:
        """Record that running ``run_id`` was asked to stop and tell its worker, if it
        runs here. False if the run was not running any more."""
        stop = Transition(run_id, RunStatus.CANCELLING, utcnow(), EventType.RUN_CANCEL_REQUESTED)
        (recorded,) = await self._ledger.record([stop])
        if recorded and run_id in self._active:
            self._deadlines.request_cancel(run_id)
        return recorded

    # -- reports from workers -------------------------------------------------

    async def _apply_reports(self, batch: list[reports.Report]) -> None:
        writes: list[StoreWrite] = []
        for report in batch:
            if isinstance(report, reports.RunSucceeded | reports.RunFailed | reports.RunCancelled):
                faults.reached("after_run_before_status")
            run_id = getattr(report, "run_id", None)
            if run_id is None:
                continue
            write = write_for_report(report, self._attempt(run_id), self._unrecordable)
            if write is not None:
                writes.append(self._fenced(write))
        applied = await self._ledger.record(writes)
        retried = await self._save_versions_given(writes, applied)
        for write, ok in zip(writes, applied, strict=True):
            if isinstance(write, Transition):
                self._attempt_ended(write, ok, retried.get(write.run_id))
            elif isinstance(write, AcknowledgeAttempt):
                self._hand_over_recorded(write.run_id, ok)

    async def _save_versions_given(
        self, writes: list[StoreWrite], applied: list[bool]
    ) -> dict[str, str]:
        """The save version the store allocated to each run these writes requeued."""
        run_ids = [
            write.run_id
            for write, ok in zip(writes, applied, strict=True)
            if ok and isinstance(write, Transition) and write.new_save_version
        ]
        if not run_ids:
            return {}
        store = self._ledger.store
        try:
            stored = await self._ledger.read(lambda: [store.get_run(r) for r in run_ids])
        except Exception:
            # The batch is committed: it must not be applied again. Each requeued run is
            # read back later instead (``_requeued`` with no save version).
            logger.exception("could not read back the save versions of requeued runs")
            return {}
        return {run.run_id: run.current_save_version for run in stored if run is not None}

    def _fenced(self, write: StoreWrite) -> StoreWrite:
        """``write`` as this process may make it (a cluster replica only for runs it
        still holds)."""
        return write

    def _attempt(self, run_id: str) -> Attempt:
        """What the policy may know of the run's current attempt."""
        active = self._active.get(run_id)
        return Attempt(
            run_id,
            # A run not handed over here (a report after its end): never retried.
            attempts=active.attempts if active else 1,
            max_attempts=active.spec.max_attempts if active else 1,
            timed_out=run_id in self._deadlines.timed_out,
            stopping=self.stopping,
            cancel_requested=run_id in self._deadlines.cancel_pending,
        )

    def _hand_over_recorded(self, run_id: str, recorded: bool) -> None:
        """A worker's acknowledgement of a run is durable (``recorded``): from now on a
        crash counts the attempt, so its nodes may run. Not recorded: the run is no
        longer active, and its worker is stopped rather than left waiting."""
        if recorded:
            self._executor.proceed(run_id)
        else:
            self._executor.kill(run_id)

    def _attempt_ended(
        self, move: Transition, applied: bool, save_version: str | None = None
    ) -> None:
        """Forget the run's attempt; requeue it (``move`` is to QUEUED; under
        ``save_version`` when the store gave it a fresh one)."""
        self._unrecordable.pop(move.run_id, None)
        active = self._active.pop(move.run_id, None)
        self._deadlines.attempt_ended(move.run_id)
        if move.target is RunStatus.QUEUED and applied and active is not None:
            if move.new_save_version:
                self._requeued(active, save_version)  # None: not read back yet
            else:
                self._requeued(active, move.save_version or active.save_version)
            logger.warning("run %s lost; requeued", move.run_id, extra={"run_id": move.run_id})

    def _not_recordable(self, run_id: str, error: Exception) -> None:
        """The store refused ``run_id``'s reports (they were dropped): fail the run. Its
        worker is killed if it still runs it, and its loss ends the run; otherwise its end
        is recorded now. If even that end is refused, the run is forgotten here (it stays
        active in the store until the next start recovers it). Call with the lock held."""
        cause = type(error).__name__
        if run_id in self._unrecordable:  # its failure could not be recorded either
            logger.error("run %s cannot be recorded; forgetting it", run_id)
            self._attempt_ended(not_recorded(run_id, utcnow(), cause), applied=False)
            self._ledger.finish_waiters.wake(run_id)
            return
        self._unrecordable[run_id] = cause
        if run_id in self._active and self._executor.kill(run_id):
            return
        # Its end was among the dropped reports: this stands in for it.
        self._inbox.put_nowait(
            reports.RunFailed(run_id, utcnow(), FailureReason.ERROR, NOT_RECORDED_TYPE, cause)
        )

    # -- handing over -----------------------------------------------------------------

    @staticmethod
    def _claim(queued: QueuedRun) -> Transition:
        """Mark the run running: its next attempt (the store adds the save version Kedro
        gets to the event)."""
        return Transition(
            queued.run_id,
            RunStatus.RUNNING,
            utcnow(),
            EventType.RUN_STARTED,
            event_data={"attempt": queued.attempts + 1},
        )

    def _start(self, queued: QueuedRun) -> None:
        """Hand a claimed run to a worker (``queued``: as it was before its claim). Call
        with the lock held."""
        faults.reached("after_claim")
        queued = replace(queued, attempts=queued.attempts + 1)
        self._active[queued.run_id] = queued
        self._ledger.announce_started(queued.run_id, list(queued.spec.pipeline_names), utcnow())
        self._executor.execute(RunAssignment(queued.run_id, queued.save_version, queued.spec))
        faults.reached("after_hand_over")

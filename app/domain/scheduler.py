"""LocalScheduler: the queue in this process's memory, for this process's pool (the
embedded mode): one owner of the store, so the queue is rebuilt from it at start.

Conflict-aware dispatch (``dispatch.DispatchQueue``) decides what may start; a run that
may start at once is inserted already claimed, in one transaction. See
``pool_scheduler`` for what is shared with the cluster mode.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import replace
from datetime import datetime

from app import faults
from app.domain.admission import Admission
from app.domain.callers import Caller
from app.domain.dispatch import DispatchQueue, QueuedRun
from app.domain.ledger import RunLedger
from app.domain.policy import lost_run_writes, queued_past_timeout
from app.domain.pool_scheduler import PoolScheduler
from app.domain.ports import IdempotencyKey, RunExecutor, Transition
from app.domain.queries import cancellable
from app.domain.runs import (
    ACTIVE_STATUSES,
    EventType,
    FailureReason,
    Footprint,
    Run,
    RunSpec,
    RunStatus,
    utcnow,
)
from app.errors import ServiceUnavailable

logger = logging.getLogger("kedro_runs.service")


class LocalScheduler(PoolScheduler):
    """Queue, admission, deadlines, attempts, dispatch and recovery for one process.
    Construct, ``await start()``, use, ``await stop()``."""

    def __init__(
        self,
        ledger: RunLedger,
        executor: RunExecutor,
        *,
        cancel_grace_seconds: float,
        max_queued_runs: int = 1000,
        default_timeout_seconds: float = 24 * 3600.0,
        max_timeout_seconds: float = 7 * 24 * 3600.0,
    ) -> None:
        super().__init__(
            ledger,
            executor,
            cancel_grace_seconds=cancel_grace_seconds,
            default_timeout_seconds=default_timeout_seconds,
        )
        self._queue = DispatchQueue()
        self._timeouts: set[asyncio.Task[None]] = set()  # runs being stopped for time
        self._admission = Admission(
            self._queue,
            executor,
            max_queued_runs=max_queued_runs,
            max_timeout_seconds=max_timeout_seconds,
        )

    async def start(self) -> None:
        """Recover from the previous process, then start executing queued runs."""
        store = self._ledger.store
        await self._recover_own(
            "the service stopped while the run was active", FailureReason.WORKER_LOST
        )
        for run in await self._ledger.read(lambda: store.runs_in([RunStatus.QUEUED])):
            self._queue.enqueue(QueuedRun.of(run))
            self._ledger.track(run)
            self._deadlines.arm_timeout(run.run_id, run.spec.timeout_seconds, run.queued_at)
        await self._start_pool()

    async def _recover_own(self, detail: str, reason: FailureReason) -> None:
        """Every active run in the store was this process's (or its predecessor's)."""
        store = self._ledger.store
        active = await self._ledger.read(lambda: store.runs_in(sorted(ACTIVE_STATUSES)))
        for run in active:
            self._ledger.track(run)
            self._queue.finish(run.run_id)
            self._active.pop(run.run_id, None)
        writes = lost_run_writes(active, detail, reason, utcnow())
        if writes:
            await self._ledger.record(writes)
            requeued = sum(1 for write in writes if write.target is RunStatus.QUEUED)
            logger.warning(
                "%d run(s) ended, %d requeued: %s", len(writes) - requeued, requeued, detail
            )

    # -- accepting and cancelling ----------------------------------------------

    def check_admission(self, spec: RunSpec) -> None:
        """Refuse, before any planning, a timeout above the maximum (InvalidRunRequest) or
        a run that could only be queued while the queue is full (QueueFull)."""
        self._admission.check_timeout(spec)
        self._admission.refuse_if_full()

    async def accept(
        self, run: Run, key: IdempotencyKey | None, key_live_since: datetime | None
    ) -> Run:
        """Commit ``run`` (queued, as planned) and schedule it. Raises
        ServiceUnavailable (shutting down), QueueFull, and what the store raises
        (IdempotencyKeyTaken too), with nothing committed."""
        async with self._lock:
            if self._draining:
                raise ServiceUnavailable("The service is shutting down.", retry_after_seconds=5)
            # Fast path: a run that may start at once is inserted already claimed (one
            # transaction) and handed to a worker without a trip through the supervisor.
            start_now = self._queue.can_start_new(run.footprint, self._free_slots())
            if not start_now and self._queue.queued_count >= self._admission.max_queued:
                raise self._admission.queue_full()
            claim = [self._claim(QueuedRun.of(run))] if start_now else []
            run = await self._ledger.insert(run, claim, key, key_live_since)
            queued = QueuedRun.of(run)  # with the save version the store gave it
            faults.reached("after_insert_before_202")
            self._deadlines.arm_timeout(run.run_id, run.spec.timeout_seconds, run.queued_at)
            if start_now:
                self._start(queued)
            else:
                self._queue.enqueue(queued)
        return run

    async def cancel(self, run_id: str, caller: Caller) -> None:
        """Cancel a queued run now, or ask a running one to stop. Raises RunNotFound
        (also for a run ``caller`` may not see), RunStateConflict (it already ended)."""
        async with self._lock:  # read under the lock: dispatch cannot start it meanwhile
            run = await self._ledger.read(lambda: self._ledger.store.get_run(run_id))
            run = cancellable(run, run_id, caller)
            now = utcnow()
            if run.status is RunStatus.QUEUED:
                await self._end_queued(
                    Transition(
                        run_id,
                        RunStatus.CANCELLED,
                        now,
                        EventType.RUN_CANCELLED,
                        event_data={"detail": "cancelled while queued"},
                    )
                )
            elif run.status is RunStatus.RUNNING:
                stop = Transition(run_id, RunStatus.CANCELLING, now, EventType.RUN_CANCEL_REQUESTED)
                await self._ledger.record([stop])
                self._deadlines.request_cancel(run_id)

    def _on_timeout(self, run_id: str, limit_seconds: float) -> None:
        task = asyncio.get_running_loop().create_task(self._time_out(run_id, limit_seconds))
        self._timeouts.add(task)
        task.add_done_callback(self._timeouts.discard)

    async def _time_out(self, run_id: str, limit_seconds: float) -> None:
        """The run reached its timeout (counted from submission): stop it if it is
        running, fail it ``timeout`` if it is still queued."""
        async with self._lock:
            if self._queue.is_running(run_id):
                self._deadlines.stop_past_timeout(run_id, limit_seconds)
                return
            if not self._queue.is_queued(run_id):
                return  # it ended meanwhile
            try:
                await self._end_queued(queued_past_timeout(run_id, limit_seconds, utcnow()))
            except Exception:  # the store cannot write now (disk full): try again soon
                logger.exception("could not fail run %s past its timeout", run_id)
                loop = asyncio.get_running_loop()
                loop.call_later(1.0, self._on_timeout, run_id, limit_seconds)

    async def _end_queued(self, move: Transition) -> None:
        """End a queued run (``move`` to a terminal state): record it, take it off the
        queue and start what may start now. Call with the lock held. Raises what the
        store raises, with nothing changed here."""
        await self._ledger.record([move])
        self._queue.remove_queued(move.run_id)
        await self._dispatch()

    # -- what waits for what ------------------------------------------------------

    async def waiting_for(self, run_id: str, caller: Caller) -> list[str]:
        """The runs in flight that queued run ``run_id`` waits for and ``caller`` may see
        (a queued run may wait for another key's run, but never names it)."""
        return self._seen_by(caller, self._queue.waiting_for(run_id))

    async def conflicting(self, footprint: Footprint, caller: Caller) -> list[str]:
        """The runs in flight that a new run with ``footprint`` would wait for."""
        async with self._lock:
            return self._seen_by(caller, self._queue.conflicting(footprint))

    def _seen_by(self, caller: Caller, run_ids: list[str]) -> list[str]:
        return [r for r in run_ids if caller.may_see(self._ledger.owner_of(r))]

    # -- gauges -------------------------------------------------------------------

    @property
    def queue_depth(self) -> int:
        return self._queue.queued_count

    @property
    def waiting_on_conflicts(self) -> int:
        return self._queue.blocked_count

    def _requeued(self, queued: QueuedRun, save_version: str | None) -> None:
        if save_version is not None:
            self._queue.enqueue(replace(queued, save_version=save_version))
            return
        task = asyncio.get_running_loop().create_task(self._enqueue_when_read(queued.run_id))
        self._timeouts.add(task)  # kept until done, like the timeout tasks
        task.add_done_callback(self._timeouts.discard)

    async def _enqueue_when_read(self, run_id: str) -> None:
        """Queue a requeued run as the store has it, once it can be read."""
        store = self._ledger.store
        while not self.stopping:
            try:
                run = await self._ledger.read(lambda: store.get_run(run_id))
            except Exception:
                await asyncio.sleep(1.0)
                continue
            async with self._lock:
                if run is not None and run.status is RunStatus.QUEUED:
                    if not self._queue.is_queued(run_id):
                        self._queue.enqueue(QueuedRun.of(run))
                    await self._dispatch()
            return

    def _attempt_ended(
        self, move: Transition, applied: bool, save_version: str | None = None
    ) -> None:
        self._queue.finish(move.run_id)
        super()._attempt_ended(move, applied, save_version)

    # -- dispatch -------------------------------------------------------------------

    async def _dispatch(self) -> None:
        """Start every queued run that may start now. Call with the lock held.

        Each run is marked running in the store before a worker hears of it, so a
        crash in between leaves it ``running`` with an attempt no worker acknowledged:
        recovery requeues it with that attempt given back.
        """
        if self._draining:
            return
        startable = self._queue.startable(self._free_slots())
        if not startable:
            return
        claimed = await self._ledger.record([self._claim(queued) for queued in startable])
        for queued, ok in zip(startable, claimed, strict=True):
            if ok:
                self._start(queued)
            else:  # no longer queued (cancelled meanwhile)
                self._queue.remove_queued(queued.run_id)

    def _start(self, queued: QueuedRun) -> None:
        self._queue.mark_running(queued)
        super()._start(queued)

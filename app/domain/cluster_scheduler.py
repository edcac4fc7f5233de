"""ClusterScheduler: many replicas, one queue, in the database they share.

Each replica (``kedro-runs serve --cluster``) runs its own pool, or none. The database is
the only source of truth; nothing a replica holds in memory is needed by another:

- **Dispatch.** A replica with free slots runs a dispatch pass: under one database-wide
  lock, the store hands it the queued runs (in submission order) and the active runs of
  every replica, the unchanged conflict rule (``DispatchQueue.startable``) picks what may
  start, and the claims commit in the same transaction. So a run never starts twice, a
  run that reads what another writes never overlaps it, and submission order holds,
  across replicas. Passes run after this replica's own submissions and reports, on a
  notice that any run changed state, and at least every ``recheck_seconds``.
- **Leases.** A replica heartbeats every ``heartbeat_seconds``; its claims are fenced on
  its id. A replica whose heartbeat is older than ``lease_seconds`` is dead: any other
  replica settles its active runs as lost (``policy.lost_run_writes``: failed
  ``worker_lost``, or requeued under ``max_attempts``) and removes it. A replica that
  finds itself declared dead kills its workers (their ends no longer apply) and joins
  again under a new id.
- **Cancel.** Any replica records ``cancelling``; the notice reaches the replica that
  runs it, which also re-checks its runs' states with every heartbeat.
- **Timeouts.** The replica running a run enforces its timeout; a queued run past its
  timeout is failed by any replica's sweep (once per heartbeat, so up to
  ``heartbeat_seconds`` late).
- **Notices** (``ChangeListener``): ``r:<id>`` something was recorded for a run,
  ``e:<id>`` it ended, ``c:<id>`` it was asked to stop, ``s`` some run changed state.
  A lost notice costs at most ``recheck_seconds``: long polls and streams re-read.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime, timedelta
from functools import partial

from app.domain.admission import check_timeout, queue_full
from app.domain.callers import Caller
from app.domain.dispatch import DispatchQueue, QueuedRun
from app.domain.ledger import FEED, RunLedger
from app.domain.policy import lost_run_writes, queued_past_timeout
from app.domain.pool_scheduler import PoolScheduler
from app.domain.ports import (
    ChangeListener,
    ClusterStore,
    IdempotencyKey,
    RunExecutor,
    StoreWrite,
    Transition,
)
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

LOST_REPLICA_DETAIL = "the replica running the run stopped renewing its lease"
ORPHAN_DETAIL = "no replica held the run (its service stopped or crashed while it was active)"
STRAY_DETAIL = "the replica running the run lost track of its worker"
FENCE_AT = 0.8  # of a lease not renewed: stop this replica's runs before others take them


class _DispatchView:
    """One snapshot of the shared queue, as the conflict rule sees it."""

    def __init__(self, queued: list[Run], active: list[Run], at: float) -> None:
        self.queue = DispatchQueue()
        for run in queued:
            self.queue.enqueue(QueuedRun.of(run))
        for run in active:
            self.queue.mark_running(QueuedRun.of(run))
        self.owners = {run.run_id: run.owner for run in (*queued, *active)}
        self.queued = queued
        self.at = at


class ClusterScheduler(PoolScheduler):
    """See the module docstring. Construct, ``await start()``, use, ``await stop()``."""

    def __init__(
        self,
        ledger: RunLedger,
        executor: RunExecutor,
        cluster: ClusterStore,
        listener: ChangeListener,
        *,
        cancel_grace_seconds: float,
        max_queued_runs: int = 1000,
        default_timeout_seconds: float = 24 * 3600.0,
        max_timeout_seconds: float = 7 * 24 * 3600.0,
        lease_seconds: float = 10.0,
        heartbeat_seconds: float = 2.0,
        recheck_seconds: float = 1.0,
    ) -> None:
        super().__init__(
            ledger,
            executor,
            cancel_grace_seconds=cancel_grace_seconds,
            default_timeout_seconds=default_timeout_seconds,
        )
        self._cluster = cluster
        self._listener = listener
        self.instance = _new_instance_id()
        self._max_queued = max_queued_runs
        self._max_timeout = max_timeout_seconds
        self._default_timeout = default_timeout_seconds
        self._lease = lease_seconds
        self._heartbeat = heartbeat_seconds
        self.recheck_seconds: float | None = recheck_seconds
        self._recheck = recheck_seconds
        self._view: _DispatchView | None = None
        self._view_stale = False  # a notice said the queue changed
        self._refresh: asyncio.Task[_DispatchView] | None = None  # one read for all askers
        self._renewed_at = 0.0  # loop time of the last heartbeat that reached the store
        self._healthy_since: float | None = None  # renewing without a gap since
        self._wanted = asyncio.Event()  # a dispatch pass is wanted
        self._admitting = asyncio.Lock()  # one count-then-insert at a time
        self._loops: list[asyncio.Task[None]] = []

    # -- lifecycle -----------------------------------------------------------

    async def start(self) -> None:
        """Join the cluster, listen for notices, start the pool and the loops. Runs other
        replicas left active are theirs, or their lease's to end: nothing is recovered."""
        await self._ledger.on_writer(lambda: self._cluster.join(self.instance, 0))
        loop = asyncio.get_running_loop()
        self._renewed_at = loop.time()

        def hear(notice: str) -> None:  # on the listener's thread
            if not loop.is_closed():
                loop.call_soon_threadsafe(self._heard, notice)

        await loop.run_in_executor(None, self._listener.start, hear)
        await self._start_pool()
        self._loops = [
            asyncio.create_task(self._dispatch_loop(), name="cluster-dispatch"),
            asyncio.create_task(self._lease_loop(), name="cluster-lease"),
        ]
        logger.info("joined the cluster as replica %s", self.instance)

    async def stop(self, drain_seconds: float = 0.0) -> None:
        """As the embedded stop (this replica's active runs end ``interrupted`` or are
        requeued for another replica); then leave the cluster."""
        recovered = False
        try:
            await super().stop(drain_seconds)
            recovered = True
        finally:
            for loop in self._loops:
                loop.cancel()
            for loop in self._loops:
                with contextlib.suppress(asyncio.CancelledError):
                    await loop
            await asyncio.get_running_loop().run_in_executor(None, self._listener.stop)
            # Leave only with every run of this replica settled; otherwise its lease
            # lapses and another replica settles them.
            if recovered:
                with contextlib.suppress(Exception):
                    await self._ledger.on_writer(lambda: self._cluster.leave(self.instance))

    async def _recover_own(self, detail: str, reason: FailureReason) -> None:
        instance = self.instance
        mine = await self._ledger.read(lambda: self._cluster.claimed_by(instance))
        await self._settle_lost(instance, mine, detail, reason)
        self._active.clear()

    async def _settle_lost(
        self, instance: str, runs: list[Run], detail: str, reason: FailureReason
    ) -> None:
        """End or requeue ``runs``, claimed by ``instance`` whose workers are gone: only
        while they are still active and still its."""
        for run in runs:
            self._ledger.track(run)
        writes = lost_run_writes(runs, detail, reason, utcnow())
        fenced = [replace(w, fence=instance, only_from=ACTIVE_STATUSES) for w in writes]
        if fenced:
            applied = await self._ledger.record(fenced)
            logger.warning("%d run(s) of replica %s settled: %s", sum(applied), instance, detail)
            self._wake_dispatch()

    # -- accepting and cancelling ----------------------------------------------

    def check_admission(self, spec: RunSpec) -> None:
        check_timeout(spec, self._max_timeout)
        view = self._view
        if view is not None and len(view.queued) >= self._max_queued:
            raise queue_full(self._max_queued, len(view.queued), max(1, self.ready_workers))

    async def accept(
        self, run: Run, key: IdempotencyKey | None, key_live_since: datetime | None
    ) -> Run:
        if self._draining:
            raise ServiceUnavailable("The service is shutting down.", retry_after_seconds=5)
        # Count, then insert, one submission at a time here: concurrent ones would all
        # see room. Across replicas the cap may be passed by at most one run a replica.
        async with self._admitting:
            queued = await self._ledger.read(self._cluster.queued_count)
            if queued >= self._max_queued:
                raise queue_full(self._max_queued, queued, max(1, self.ready_workers))
            run = await self._ledger.insert(run, key=key, key_live_since=key_live_since)
        self._wake_dispatch()
        return run

    async def cancel(self, run_id: str, caller: Caller) -> None:
        """As the embedded cancel, for a run of any replica. A queued run claimed meanwhile
        is asked to stop instead."""
        async with self._lock:
            for _ in range(3):  # each retry means the run moved on meanwhile
                run = await self._ledger.read(lambda: self._ledger.store.get_run(run_id))
                run = cancellable(run, run_id, caller)
                if run.status is RunStatus.CANCELLING:
                    return
                if run.status is RunStatus.QUEUED:
                    cancel = Transition(
                        run_id,
                        RunStatus.CANCELLED,
                        utcnow(),
                        EventType.RUN_CANCELLED,
                        event_data={"detail": "cancelled while queued"},
                        only_from=frozenset({RunStatus.QUEUED}),
                    )
                    if (await self._ledger.record([cancel]))[0]:
                        self._wake_dispatch()
                        return
                elif await self._ask_to_stop(run_id):
                    return

    def _on_timeout(self, run_id: str, limit_seconds: float) -> None:
        """Only runs claimed here have a timer: stop one still running here."""
        if run_id in self._active:
            self._deadlines.stop_past_timeout(run_id, limit_seconds)

    def _limit(self, run: Run) -> float:
        return run.spec.timeout_seconds or self._default_timeout

    def _past_timeout(self, run: Run, now: datetime) -> bool:
        return run.queued_at + timedelta(seconds=self._limit(run)) <= now

    async def _fail_queued_past_timeout(self, queued: list[Run]) -> None:
        now = utcnow()
        late = [
            replace(
                queued_past_timeout(run.run_id, self._limit(run), now),
                only_from=frozenset({RunStatus.QUEUED}),
            )
            for run in queued
            if self._past_timeout(run, now)
        ]
        if late:
            await self._ledger.record(late)

    # -- what waits for what ------------------------------------------------------

    async def _fresh_view(self, max_age: float | None = None) -> _DispatchView:
        """The shared queue as of at most ``max_age`` (default ``recheck_seconds``) ago, or
        since the last notice that it changed; concurrent askers share one read."""
        loop = asyncio.get_running_loop()
        view = self._view
        age = self._recheck if max_age is None else max_age
        if view is not None and not self._view_stale and loop.time() - view.at <= age:
            return view
        if self._refresh is None:
            self._view_stale = False
            self._refresh = loop.create_task(self._read_view())
            self._refresh.add_done_callback(self._refreshed)
        return await asyncio.shield(self._refresh)

    async def _read_view(self) -> _DispatchView:
        queued, active = await self._ledger.read(self._cluster.dispatch_state)
        view = _DispatchView(queued, active, asyncio.get_running_loop().time())
        self._view = view  # the gauges show the last one read, not nothing
        return view

    def _refreshed(self, task: asyncio.Task[_DispatchView]) -> None:
        self._refresh = None
        if not task.cancelled():
            task.exception()  # retrieved: each asker has it raised in turn

    async def waiting_for(self, run_id: str, caller: Caller) -> list[str]:
        view = await self._fresh_view()
        waits = view.queue.waiting_for(run_id)
        return [r for r in waits if caller.may_see(view.owners.get(r, ""))]

    async def conflicting(self, footprint: Footprint, caller: Caller) -> list[str]:
        view = await self._fresh_view()
        waits = view.queue.conflicting(footprint)
        return [r for r in waits if caller.may_see(view.owners.get(r, ""))]

    @property
    def queue_depth(self) -> int:
        return len(self._view.queued) if self._view else 0

    @property
    def waiting_on_conflicts(self) -> int:
        return self._view.queue.blocked_count if self._view else 0

    async def workers_available(self) -> int:
        """Ready workers of every replica whose lease is current."""
        try:
            return await self._ledger.read(lambda: self._cluster.live_workers(self._lease))
        except Exception as error:
            raise ServiceUnavailable(
                "The database cannot be reached.", retry_after_seconds=2
            ) from error

    # -- reports from this pool ----------------------------------------------------

    def _fenced(self, write: StoreWrite) -> StoreWrite:
        return replace(write, fence=self.instance)

    def _requeued(self, queued: QueuedRun, save_version: str | None) -> None:
        self._wake_dispatch()  # the database is the queue: whoever is free takes it

    # -- dispatch -------------------------------------------------------------------

    def _wake_dispatch(self) -> None:
        self._wanted.set()

    async def _dispatch(self) -> None:
        """One dispatch pass for this replica's free slots. Call with the lock held."""
        free = self._free_slots()
        if self._draining or free <= 0:
            return
        instance = self.instance

        late: list[Run] = []

        def choose(queued: list[Run], active: list[Run]) -> list[Transition]:
            # A run already past its timeout is not started: it fails as still queued,
            # as the embedded timer would have failed it (right after this pass).
            now = utcnow()
            late.extend(run for run in queued if self._past_timeout(run, now))
            view = _DispatchView([r for r in queued if r not in late], active, 0.0)
            return [
                replace(self._claim(chosen), claim_for=instance)
                for chosen in view.queue.startable(free)
            ]

        claimed = await self._ledger.commit(
            lambda: self._cluster.claim(instance, self._lease, choose)
        )
        for run in claimed:
            self._ledger.track(run)
            self._deadlines.arm_timeout(run.run_id, run.spec.timeout_seconds, run.queued_at)
            self._start(QueuedRun.of(run))
        if late:
            await self._fail_queued_past_timeout(late)

    async def _dispatch_loop(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wanted.wait(), self._recheck)
            self._wanted.clear()
            if self._draining:
                continue
            try:
                async with self._lock:
                    await self._dispatch()
            except Exception:
                logger.exception("dispatch pass failed; retrying")
                await asyncio.sleep(self._recheck)

    # -- leases -------------------------------------------------------------------------

    async def _lease_loop(self) -> None:
        while True:
            await asyncio.sleep(self._heartbeat)
            try:
                await self._renew_lease()
            except Exception:
                logger.exception("could not renew the lease; retrying")
                self._healthy_since = None
                self._fence_if_lapsing()
                continue
            try:
                await self._reconcile_own_claims()
                if self._healthy_for_a_lease():
                    await self._take_over_dead_replicas()
                view = await self._fresh_view(max_age=0.0)
                await self._fail_queued_past_timeout(view.queued)
                await self._recheck_cancels()
            except Exception:
                logger.exception("lease upkeep failed; retrying")

    async def _renew_lease(self) -> None:
        """Heartbeat (on a reader thread: never queued behind this replica's writes). A
        replica told it was declared dead stops its runs and joins again."""
        instance, ready, busy = self.instance, self.ready_workers, self.busy_workers
        alive = await self._ledger.read(lambda: self._cluster.heartbeat(instance, ready, busy))
        loop = asyncio.get_running_loop()
        self._renewed_at = loop.time()
        if alive:
            if self._healthy_since is None:
                self._healthy_since = loop.time()
            return
        logger.error(
            "replica %s was declared dead (its lease expired): stopping its runs", instance
        )
        async with self._lock:
            self._stop_all_runs()
            self.instance = _new_instance_id()
            self._healthy_since = None
            await self._ledger.read(lambda: self._cluster.join(self.instance, ready))

    def _fence_if_lapsing(self) -> None:
        """Near the end of a lease this replica could not renew, its runs are about to be
        taken over by the others: stop them first, so none runs twice at once."""
        if not self._active or asyncio.get_running_loop().time() - self._renewed_at < (
            self._lease * FENCE_AT
        ):
            return
        logger.error(
            "replica %s could not renew its lease for %.0fs: stopping its %d run(s) before "
            "another replica takes them over",
            self.instance,
            asyncio.get_running_loop().time() - self._renewed_at,
            len(self._active),
        )
        self._stop_all_runs()

    def _stop_all_runs(self) -> None:
        for run_id in list(self._active):
            self._executor.kill(run_id)  # their ends are fenced: they no longer apply

    def _healthy_for_a_lease(self) -> bool:
        """Only a replica that has renewed its own lease for a whole lease period takes
        others over: after an outage of the database, every lease looks lapsed at once,
        and the others must get their chance to renew first."""
        since = self._healthy_since
        return since is not None and asyncio.get_running_loop().time() - since >= self._lease

    async def _take_over_dead_replicas(self) -> None:
        dead = await self._ledger.read(lambda: self._cluster.expired_instances(self._lease))
        for instance in dead:
            if instance != self.instance:
                await self._settle(
                    partial(self._cluster.take_over, instance, self._lease),
                    LOST_REPLICA_DETAIL,
                    FailureReason.WORKER_LOST,
                )
        await self._settle(self._cluster.settle_orphans, ORPHAN_DETAIL, FailureReason.WORKER_LOST)

    async def _settle(
        self,
        take: Callable[
            [Callable[[list[Run]], list[Transition]]], tuple[list[Run], list[StoreWrite]]
        ],
        detail: str,
        reason: FailureReason,
    ) -> None:
        """Settle, in the store's transaction ``take``, the runs it finds with no worker."""

        def settle(runs: list[Run]) -> list[Transition]:
            return lost_run_writes(runs, detail, reason, utcnow())

        runs = await self._ledger.commit(lambda: take(settle), prepare=self._track_all)
        if runs:
            logger.warning("%d run(s) settled: %s", len(runs), detail)
            self._wake_dispatch()

    def _track_all(self, runs: list[Run]) -> None:
        for run in runs:
            self._ledger.track(run)  # so hooks are told their pipelines when they end

    async def _reconcile_own_claims(self) -> None:
        """Runs the store says this replica holds, but its pool does not run (an end that
        did not apply: the run had been asked to stop by another replica meanwhile, say),
        are settled as lost, so none stays active for good."""
        async with self._lock:
            instance = self.instance
            mine = await self._ledger.read(lambda: self._cluster.claimed_by(instance))
            strays = [run for run in mine if run.run_id not in self._active]
            if strays:
                await self._settle_lost(instance, strays, STRAY_DETAIL, FailureReason.WORKER_LOST)

    async def _recheck_cancels(self) -> None:
        """A cancel whose notice was lost still reaches the run's worker."""
        for run_id in list(self._active):
            if run_id in self._deadlines.cancel_pending:
                continue
            run = await self._ledger.read(partial(self._ledger.store.get_run, run_id))
            if run is not None and run.status is RunStatus.CANCELLING:
                self._deadlines.request_cancel(run_id)

    # -- notices ------------------------------------------------------------------------

    def _heard(self, notice: str) -> None:
        kind, _, run_id = notice.partition(":")
        if kind == "r":
            self._ledger.heard(run_id, ended=False)
        elif kind == "e":
            self._ledger.heard(run_id, ended=True)
            self._wake_dispatch()
        elif kind == "c":
            if run_id in self._active and run_id not in self._deadlines.cancel_pending:
                self._deadlines.request_cancel(run_id)
        elif kind == "*":  # notices may have been missed: everyone reads again
            self._view_stale = True
            self._ledger.wake_all()
            self._wake_dispatch()
        elif kind == "s":
            self._view_stale = True
            self._ledger.change_signal.notify(FEED)
            self._wake_dispatch()


def _new_instance_id() -> str:
    return uuid.uuid4().hex[:16]

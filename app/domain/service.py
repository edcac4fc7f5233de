"""RunService: accepts runs, keeps them durable, dispatches them and records what happens.

Concurrency model: everything that changes which runs are queued or running
happens on the event loop under one ``asyncio.Lock``; every store call runs on a
thread (one writer thread, so writes keep their order; a few reader threads).
A run row is committed before ``submit`` returns, a run is marked running in
the store before a worker is told to execute it, and the worker runs no node
until its acknowledgement is recorded, so a crash can lose neither the run nor
the fact that it may have started, and tells a run that started from one no
worker took.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from typing import Any, TypeVar

from app import faults
from app.domain import reports
from app.domain.admission import Admission
from app.domain.callers import ANONYMOUS, Caller
from app.domain.deadlines import Deadlines
from app.domain.discovery import DatasetInfo, PipelineDetail, PipelineSummary, PlanDetail
from app.domain.dispatch import DispatchQueue, QueuedRun
from app.domain.idempotency import IdempotencyKeys, check_same_body
from app.domain.ports import (
    AcknowledgeAttempt,
    AppendEvent,
    AppendLogs,
    IdempotencyKey,
    ProjectInspector,
    RecordOutputs,
    RunAssignment,
    RunExecutor,
    RunHooks,
    RunStore,
    StoredLogLine,
    StoreWrite,
    Transition,
)
from app.domain.queries import RunQueries, visible
from app.domain.recording import (
    NOT_RECORDED_TYPE,
    SHUTDOWN_DETAIL,
    error_data,
    not_recorded,
    store_write_for,
)
from app.domain.recovery import interrupted_writes
from app.domain.retry import requeue_instead
from app.domain.runs import (
    ACTIVE_STATUSES,
    TERMINAL_STATUSES,
    EventType,
    FailureReason,
    Run,
    RunError,
    RunEvent,
    RunPlan,
    RunSpec,
    RunStatus,
    node_progress,
    utcnow,
)
from app.domain.signals import ChangeSignal, FinishWaiters, StateChangeFeed
from app.domain.supervisor import STOP, supervise
from app.domain.tracking import RunBook
from app.domain.views import RunListPage, RunView
from app.errors import IdempotencyKeyTaken, RunStateConflict, ServiceUnavailable

logger = logging.getLogger("kedro_runs.service")

T = TypeVar("T")


_ANY_RUN_ENDED = "*ended"  # change-signal key: some run reached a terminal state


def logs_key(run_id: str) -> str:
    """The change-signal key of a run's log (its events use the run id itself)."""
    return f"logs:{run_id}"


class RunService:
    """The run lifecycle. Construct, ``await start()``, use, ``await stop()``."""

    def __init__(
        self,
        store: RunStore,
        inspector: ProjectInspector,
        executor: RunExecutor,
        *,
        cancel_grace_seconds: float,
        hooks: RunHooks,
        max_queued_runs: int = 1000,
        default_timeout_seconds: float = 24 * 3600.0,
        max_timeout_seconds: float = 7 * 24 * 3600.0,
        idempotency_ttl_seconds: float = 24 * 3600.0,
    ) -> None:
        self._store = store
        self._inspector = inspector
        self._executor = executor
        self._writer = ThreadPoolExecutor(1, thread_name_prefix="run-store-writer")
        self._readers = ThreadPoolExecutor(4, thread_name_prefix="run-store-reader")
        self._queries = RunQueries(store, self._readers, self._waiting_for)
        self._planner = ThreadPoolExecutor(1, thread_name_prefix="kedro-planner")
        self._queue = DispatchQueue()
        self._lock = asyncio.Lock()
        self._inbox: asyncio.Queue[reports.Report] = asyncio.Queue()
        self._supervisor: asyncio.Task[None] | None = None
        self._finish_waiters = FinishWaiters()  # long polls
        self._stopping = False
        self._draining = False  # shutting down: no new runs, no dispatch
        self._stop_now = False  # stop_now(): shutting down without waiting for the store
        self._drain_deadline: float | None = None  # loop time the drain ends at
        self._hooks = hooks
        self._deadlines = Deadlines(
            self._queue,
            executor,
            cancel_grace_seconds=cancel_grace_seconds,
            default_timeout_seconds=default_timeout_seconds,
            on_timeout=self._on_timeout,
        )
        self._timeouts: set[asyncio.Task[None]] = set()  # runs being stopped for time
        self._admission = Admission(
            self._queue,
            executor,
            max_queued_runs=max_queued_runs,
            max_timeout_seconds=max_timeout_seconds,
        )
        self._keys = IdempotencyKeys(idempotency_ttl_seconds)
        self._runs = RunBook()  # pipelines, owner, start of each unfinished run
        self._active: dict[str, QueuedRun] = {}  # runs handed to a worker, with their attempt
        self._unrecordable: dict[str, str] = {}  # runs whose reports the store refused: why
        self.event_signal = ChangeSignal()  # keyed by run id: new events were recorded
        self.state_changes = StateChangeFeed()

    # -- lifecycle -----------------------------------------------------------

    async def start(self) -> None:
        """Recover from the previous process, then start executing queued runs."""
        await self._recover_interrupted("the service stopped while the run was active")
        for run in await self._read(lambda: self._store.runs_in([RunStatus.QUEUED])):
            self._queue.enqueue(QueuedRun.of(run))
            self._runs.track(run.run_id, list(run.spec.pipeline_names), run.owner)
            self._deadlines.arm_timeout(run.run_id, run.spec.timeout_seconds, run.queued_at)
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
        ``failed(interrupted)``; queued runs stay queued for the next start. Reports that
        arrived before the workers stopped are recorded first."""
        await self.drain(drain_seconds)
        self._stopping = True
        self._finish_waiters.wake()
        self.event_signal.notify_all()
        self.state_changes.signal.notify_all()
        self._deadlines.cancel_all()
        await self._executor.stop()
        if self._supervisor is not None:
            self._inbox.put_nowait(STOP)
            await self._supervisor
        async with self._lock:
            try:
                await self._recover_interrupted(SHUTDOWN_DETAIL, reason=FailureReason.INTERRUPTED)
            except ServiceUnavailable:
                if not self._stop_now:
                    raise
                logger.error("the run store cannot write: active runs are left to the next start")
        self._writer.shutdown(wait=True)
        self._readers.shutdown(wait=True)
        self._planner.shutdown(wait=True)

    async def drain(self, seconds: float) -> None:
        """Take no new runs (submissions get 503) and start no queued ones; wait until no
        run is running, or ``seconds`` have passed since the first call (a later call,
        such as ``stop``'s, does not extend the budget)."""
        self._draining = True
        loop = asyncio.get_running_loop()
        if self._drain_deadline is None:
            self._drain_deadline = loop.time() + seconds
        while self._queue.running_count and loop.time() < self._drain_deadline:
            await self.event_signal.wait(_ANY_RUN_ENDED, 0.1)

    def end_drain(self) -> None:
        """Spend the rest of the drain budget now (a second SIGTERM, or SIGINT, or the
        server closing its connections): take no new runs; a drain under way returns
        within its next poll (0.1 s), a later ``drain`` or ``stop`` waits for no run, and
        long polls answer now, with the run as it is. Call it on the event loop's thread."""
        self._draining = True
        self._drain_deadline = asyncio.get_running_loop().time()
        self._finish_waiters.wake()

    def stop_now(self) -> None:
        """``end_drain``, and a stop that no longer waits for the store (a second SIGTERM,
        or SIGINT): reports it cannot record (its disk is full) are dropped, and the runs
        they were about stay active in the store, for the next start to recover as after a
        crash, rather than holding the process up until there is space."""
        self._stop_now = True
        self.end_drain()

    async def _recover_interrupted(
        self, detail: str, reason: FailureReason = FailureReason.WORKER_LOST
    ) -> None:
        active = await self._read(lambda: self._store.runs_in(sorted(ACTIVE_STATUSES)))
        for run in active:
            self._runs.track_recovered(run)
            self._queue.finish(run.run_id)
            self._active.pop(run.run_id, None)
        writes = interrupted_writes(active, detail, reason, utcnow())
        if writes:
            await self._write(writes)
            requeued = sum(1 for write in writes if write.target is RunStatus.QUEUED)
            logger.warning(
                "%d run(s) ended, %d requeued: %s", len(writes) - requeued, requeued, detail
            )

    # -- commands -------------------------------------------------------------

    async def submit_once(
        self, spec: RunSpec, run_id: str, key: IdempotencyKey, *, caller: Caller
    ) -> tuple[RunView, bool]:
        """``submit`` at most once per caller and Idempotency-Key (within the key's time to
        live): the same key and body return the original run (and True); the same key
        with another body is a 422; while the first request with a key is being handled,
        another with it is a 409 (IdempotencyKeyInUse). ``key.principal`` is the caller's
        name, so one caller's key never finds another's run."""
        with self._keys.holding(key):
            return await self._submit_or_replay(spec, run_id, key, caller)

    async def _submit_or_replay(
        self, spec: RunSpec, run_id: str, key: IdempotencyKey, caller: Caller
    ) -> tuple[RunView, bool]:
        since = self._keys.live_since(utcnow())
        found = await self._read(lambda: self._store.find_key(key.principal, key.key, since))
        if found is None:
            try:
                return await self.submit(spec, run_id, key, caller=caller), False
            except IdempotencyKeyTaken:
                # Another process stored a run under the key meanwhile: replay that one.
                found = await self._read(
                    lambda: self._store.find_key(key.principal, key.key, since)
                )
                if found is None:
                    raise
        body_hash, original = found
        check_same_body(key, body_hash)
        return await self.get(original, caller=caller), True

    @property
    def accepting(self) -> bool:
        """False once shutdown has begun: submissions get 503."""
        return not self._draining

    async def submit(
        self,
        spec: RunSpec,
        run_id: str,
        key: IdempotencyKey | None = None,
        *,
        caller: Caller,
    ) -> RunView:
        """Validate ``spec``, store it as a queued run and schedule it. Returns the run as
        accepted (``queued``), though it may already be running. Raises InvalidRunRequest."""
        self._admission.check_timeout(spec)
        self._admission.refuse_if_full()
        # Never on the event loop, however small the plan looks: its cost grows with the
        # project and the request. One planner thread, as Kedro's resolvers are
        # process-global and resolution is serialised anyway.
        loop = asyncio.get_running_loop()
        plan = await loop.run_in_executor(self._planner, self._inspector.plan, spec)
        # Shielded: once the insert is under way, a cancelled request must not leave the
        # run committed but unknown to the dispatcher.
        return await asyncio.shield(self._accept(spec, run_id, plan, key, caller))

    async def _accept(
        self, spec: RunSpec, run_id: str, plan: RunPlan, key: IdempotencyKey | None, caller: Caller
    ) -> RunView:
        owner = caller.name
        async with self._lock:
            if self._draining:
                raise ServiceUnavailable("The service is shutting down.", retry_after_seconds=5)
            # Fast path: a run that may start at once is inserted already claimed (one
            # transaction) and handed to a worker without a trip through the supervisor.
            start_now = self._queue.can_start_new(plan.footprint, self._admission.free_slots())
            if not start_now and self._queue.queued_count >= self._admission.max_queued:
                raise self._admission.queue_full()
            queued_at = utcnow()

            def insert() -> Run:
                run = Run(
                    run_id=run_id,
                    save_version="",  # the store allocates it
                    status=RunStatus.QUEUED,
                    spec=spec,
                    nodes=plan.nodes,
                    footprint=plan.footprint,
                    env=self._inspector.env,
                    kedro_version=self._inspector.kedro_version,
                    project_commit=self._inspector.project_commit,
                    queued_at=queued_at,
                    owner=owner,
                )
                claim = [self._claim(QueuedRun.of(run))] if start_now else []
                live_since = self._keys.live_since(queued_at)
                return self._store.insert_run(run, claim, key, key_live_since=live_since)

            run = await self._on_writer(insert)
            faults.reached("after_insert_before_202")
            self._announce_accepted(run, started=start_now)
            self._deadlines.arm_timeout(run_id, spec.timeout_seconds, queued_at)
            queued = QueuedRun.of(run)
            if start_now:
                self._start(queued)
            else:
                self._queue.enqueue(queued)
            waiting_for = self._waiting_for(run_id, caller)
        return RunView(run, node_progress(run, []), waiting_for)

    def _announce_accepted(self, run: Run, *, started: bool) -> None:
        """Track a run just inserted (``started``: already claimed) and tell hooks,
        event followers and the state-change feed."""
        run_id, owner, at = run.run_id, run.owner, run.queued_at
        self._runs.track(run_id, list(run.spec.pipeline_names), owner)
        logger.info("run %s queued", run_id, extra={"run_id": run_id})
        self._hooks.run_submitted(run_id, list(run.spec.pipeline_names), at)
        self._hooks.event_recorded(run_id, str(EventType.RUN_QUEUED), at, None)
        if started:
            self._hooks.event_recorded(run_id, str(EventType.RUN_STARTED), at, None)
        self.event_signal.notify(run_id)
        self.state_changes.append(run_id, str(RunStatus.QUEUED), at, owner)
        if started:
            self.state_changes.append(run_id, str(RunStatus.RUNNING), at, owner)

    async def cancel(self, run_id: str, *, caller: Caller) -> RunView:
        """Cancel a queued run now, or ask a running one to stop. Raises RunNotFound
        (also for a run ``caller`` may not see), RunStateConflict (it already finished)."""
        async with self._lock:
            run = visible(await self._read(lambda: self._store.get_run(run_id)), run_id, caller)
            if run.status in TERMINAL_STATUSES:
                raise RunStateConflict(f"Run {run_id} already ended as {run.status}.")
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
                await self._write(
                    [Transition(run_id, RunStatus.CANCELLING, now, EventType.RUN_CANCEL_REQUESTED)]
                )
                self._deadlines.request_cancel(run_id)
        return await self.get(run_id, caller=caller)

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
            error = RunError(
                FailureReason.TIMEOUT,
                "RunTimeout",
                f"the run was still queued {limit_seconds:g}s after it was submitted",
            )
            fail = Transition(
                run_id, RunStatus.FAILED, utcnow(), EventType.RUN_FAILED, error, error_data(error)
            )
            try:
                await self._end_queued(fail)
            except Exception:  # the store cannot write now (disk full): try again soon
                logger.exception("could not fail run %s past its timeout", run_id)
                loop = asyncio.get_running_loop()
                loop.call_later(1.0, self._on_timeout, run_id, limit_seconds)

    async def _end_queued(self, move: Transition) -> None:
        """End a queued run (``move`` to a terminal state): record it, take it off the
        queue, answer its long polls, and start what may start now. Call with the lock
        held. Raises what the store raises, with nothing changed here."""
        await self._write([move])
        self._queue.remove_queued(move.run_id)
        self._finish_waiters.wake(move.run_id)
        await self._dispatch()

    def _waiting_for(self, run_id: str, caller: Caller) -> list[str]:
        return self._seen_by(caller, self._queue.waiting_for(run_id))

    def _seen_by(self, caller: Caller, run_ids: list[str]) -> list[str]:
        """The runs of ``run_ids`` (all queued or running) that ``caller`` may see: a
        queued run may wait for another key's run, but never names it."""
        return [r for r in run_ids if caller.may_see(self._runs.owner_of(r, ""))]

    # -- queries --------------------------------------------------------------

    async def resolve_run_id(self, run_id: str, *, caller: Caller) -> str:
        """The run id ``run_id`` stands for: itself, or that of the run given it as save
        version (what Kedro's ``POST /run`` answers as its ``run_id``)."""
        return await self._queries.resolve(run_id, caller)

    async def get(self, run_id: str, wait_seconds: float = 0.0, *, caller: Caller) -> RunView:
        """The run with its node progress. With ``wait_seconds``, hold on until the run
        ends or that time passes (a long poll), then answer. Raises RunNotFound (also
        for a run ``caller`` may not see)."""
        if wait_seconds <= 0:
            return await self._queries.view(run_id, caller)
        # Registered before the first read, so an end recorded in between still wakes us.
        with self._finish_waiters.registered(run_id) as ended:
            view = await self._queries.view(run_id, caller)
            if view.run.status in TERMINAL_STATUSES:
                return view
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(ended, wait_seconds)
            return await self._queries.view(run_id, caller)

    async def list_runs(
        self,
        statuses: Sequence[RunStatus],
        pipeline: str | None,
        cursor: str | None,
        limit: int,
        *,
        caller: Caller,
    ) -> RunListPage:
        """The runs ``caller`` may see, newest first, ``limit`` (at most MAX_PAGE) at a
        time. Raises InvalidRequest for a cursor not of the shape of a save version."""
        return await self._queries.list_runs(statuses, pipeline, cursor, limit, caller)

    async def events(
        self, run_id: str, after: int, limit: int, *, caller: Caller
    ) -> list[RunEvent]:
        """The run's events with ``seq > after``, in order. Raises RunNotFound."""
        return await self._queries.events(run_id, after, limit, caller)

    async def logs(
        self, run_id: str, after: int, min_level: int, limit: int, *, caller: Caller
    ) -> tuple[list[StoredLogLine], int]:
        """The run's log lines after ``after`` at ``min_level`` or above, and how many of
        its records were dropped over the cap. Raises RunNotFound."""
        return await self._queries.logs(run_id, after, min_level, limit, caller)

    async def outputs(self, run_id: str, *, caller: Caller) -> dict[str, object] | None:
        """What the run saved and returned (None until it has ended). Raises RunNotFound."""
        return await self._queries.outputs(run_id, caller)

    async def status_of(self, run_id: str, *, caller: Caller) -> RunStatus:
        """The run's current status. Raises RunNotFound."""
        return await self._queries.status_of(run_id, caller)

    # -- the project ------------------------------------------------------------

    async def list_pipelines(self) -> list[PipelineSummary]:
        return self._inspector.list_pipelines()

    async def get_pipeline(self, name: str) -> PipelineDetail:
        """Raises PipelineNotFound."""
        return self._inspector.pipeline(name)

    async def list_datasets(self) -> list[DatasetInfo]:
        return self._inspector.list_datasets()

    async def plan(self, spec: RunSpec, *, caller: Caller) -> PlanDetail:
        """What ``submit(spec)`` would run, need and write, and which of the runs in flight
        that ``caller`` may see it would wait for. Runs nothing. Raises InvalidRunRequest
        like ``submit``."""
        loop = asyncio.get_running_loop()
        plan, detail = await loop.run_in_executor(self._planner, self._inspector.plan_detail, spec)
        async with self._lock:
            waiting_for = self._seen_by(caller, self._queue.conflicting(plan.footprint))
        return replace(detail, waiting_for=waiting_for)

    async def snapshot(self, params: dict[str, Any] | None) -> Any:
        """Kedro's own project snapshot, resolved with ``params``."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._planner, self._inspector.snapshot, params)

    async def run_to_end(
        self,
        spec: RunSpec,
        run_id: str,
        *,
        caller: Caller,
        key: IdempotencyKey | None = None,
    ) -> RunView:
        """Submit and wait until the run ends, however long that takes (Kedro's POST /run).
        With ``key``, as ``submit_once``, except that the key stays in flight (a retry
        gets 409) until the run has ended, since that is when this request answers."""
        with self._keys.holding(key):
            if key is None:
                view = await self.submit(spec, run_id, caller=caller)
            else:
                view, _ = await self._submit_or_replay(spec, run_id, key, caller)
            while view.run.status not in TERMINAL_STATUSES:
                view = await self.get(view.run.run_id, wait_seconds=60, caller=caller)
        return view

    @property
    def stopping(self) -> bool:
        return self._stopping

    @property
    def kedro_version(self) -> str:
        return self._inspector.kedro_version

    @property
    def queue_depth(self) -> int:
        return self._queue.queued_count

    @property
    def ready_workers(self) -> int:
        return self._executor.ready_workers

    @property
    def busy_workers(self) -> int:
        return self._queue.running_count

    @property
    def idle_workers(self) -> int:
        return self._executor.idle_slots()

    @property
    def waiting_on_conflicts(self) -> int:
        return self._queue.blocked_count

    # -- reports from workers -------------------------------------------------

    async def _apply_reports(self, batch: list[reports.Report]) -> None:
        writes: list[StoreWrite] = []
        for report in batch:
            if isinstance(report, reports.RunSucceeded | reports.RunFailed | reports.RunCancelled):
                faults.reached("after_run_before_status")
            write = store_write_for(
                report,
                stopping=self._stopping,
                cancel_pending=self._deadlines.cancel_pending,
                timed_out=self._deadlines.timed_out,
                unrecordable=self._unrecordable,
            )
            if write is None:
                continue
            if isinstance(write, Transition) and write.run_id in self._active:
                active = self._active[write.run_id]
                write = requeue_instead(write, active.attempts, active.spec.max_attempts)
            writes.append(write)
        applied = await self._write(writes) if writes else []
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
        stored = await self._read(lambda: [self._store.get_run(run_id) for run_id in run_ids])
        return {run.run_id: run.current_save_version for run in stored if run is not None}

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
        ``save_version`` when the store gave it a fresh one) or wake waiters."""
        self._queue.finish(move.run_id)
        self._unrecordable.pop(move.run_id, None)
        active = self._active.pop(move.run_id, None)
        self._deadlines.attempt_ended(move.run_id)
        if move.target is RunStatus.QUEUED:
            if applied and active is not None:
                next_version = save_version or move.save_version or active.save_version
                self._queue.enqueue(replace(active, save_version=next_version))
                logger.warning("run %s lost; requeued", move.run_id, extra={"run_id": move.run_id})
        else:
            self._finish_waiters.wake(move.run_id)

    def _not_recordable(self, run_id: str, error: Exception) -> None:
        """The store refused ``run_id``'s reports (they were dropped): fail the run. Its
        worker is killed if it still runs it, and its loss ends the run; otherwise its end
        is recorded now. If even that end is refused, the run is forgotten here (it stays
        active in the store until the next start recovers it). Call with the lock held."""
        cause = type(error).__name__
        if run_id in self._unrecordable:  # its failure could not be recorded either
            logger.error("run %s cannot be recorded; forgetting it", run_id)
            self._attempt_ended(not_recorded(run_id, utcnow(), cause), applied=False)
            return
        self._unrecordable[run_id] = cause
        if self._queue.is_running(run_id) and self._executor.kill(run_id):
            return
        # Its end was among the dropped reports: this stands in for it.
        self._inbox.put_nowait(
            reports.RunFailed(run_id, utcnow(), FailureReason.ERROR, NOT_RECORDED_TYPE, cause)
        )

    async def _dispatch(self) -> None:
        """Start every queued run that may start now. Call with the lock held.

        Each run is marked running in the store before a worker hears of it, so a
        crash in between leaves it ``running`` with an attempt no worker acknowledged:
        recovery requeues it with that attempt given back.
        """
        if self._draining:
            return
        startable = self._queue.startable(self._admission.free_slots())
        if not startable:
            return
        claimed = await self._write([self._claim(queued) for queued in startable])
        for queued, ok in zip(startable, claimed, strict=True):
            if ok:
                self._start(queued)
            else:  # no longer queued (cancelled meanwhile)
                self._queue.remove_queued(queued.run_id)

    @staticmethod
    def _claim(queued: QueuedRun) -> Transition:
        """Mark the run running: its next attempt (the store adds the save version
        Kedro gets to the event)."""
        return Transition(
            queued.run_id,
            RunStatus.RUNNING,
            utcnow(),
            EventType.RUN_STARTED,
            event_data={"attempt": queued.attempts + 1},
        )

    def _start(self, queued: QueuedRun) -> None:
        """Hand a claimed run to a worker. Call with the lock held."""
        faults.reached("after_claim")
        queued = replace(queued, attempts=queued.attempts + 1)
        self._active[queued.run_id] = queued
        now = utcnow()
        self._runs.started(queued.run_id, now)
        self._hooks.run_started(queued.run_id, list(queued.spec.pipeline_names), now)
        self._queue.mark_running(queued)
        self._executor.execute(RunAssignment(queued.run_id, queued.save_version, queued.spec))
        faults.reached("after_hand_over")

    def _tell_finished(self, move: Transition) -> None:
        tracked = self._runs.forget(move.run_id)
        self._deadlines.run_ended(move.run_id)
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

    # -- threads --------------------------------------------------------------

    async def _read(self, call: Callable[[], T]) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._readers, call)

    async def _on_writer(self, call: Callable[[], T]) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._writer, call)

    async def _write(self, writes: Sequence[StoreWrite]) -> list[bool]:
        applied = await self._on_writer(lambda: self._store.write(writes))
        for write, ok in zip(writes, applied, strict=True):
            if not ok:
                continue
            if isinstance(write, AppendLogs):
                self.event_signal.notify(logs_key(write.run_id))
                continue
            if isinstance(write, RecordOutputs | AcknowledgeAttempt):
                continue
            self.event_signal.notify(write.run_id)
            node = write.node if isinstance(write, AppendEvent) else None
            event = write.type if isinstance(write, AppendEvent) else write.event
            self._hooks.event_recorded(write.run_id, str(event), write.at, node)
            if isinstance(write, Transition):
                owner = self._runs.owner_of(write.run_id, ANONYMOUS.name)
                self.state_changes.append(write.run_id, str(write.target), write.at, owner)
                self.event_signal.notify(logs_key(write.run_id))  # log followers may end
                if write.target in TERMINAL_STATUSES:
                    self._tell_finished(write)
                    self.event_signal.notify(_ANY_RUN_ENDED)
        return applied

"""RunService: what the API asks of runs, and nothing it has to remember.

The facade is stateless: it plans a request through the project inspector (on the one
planner thread), builds the run, and hands it to the scheduler (``ports.RunScheduler``),
which owns what is queued and running; reads go to ``RunQueries``; waits go to the
ledger's signals. Idempotency-Keys are reserved in the store; the in-process hold only
answers a key's second request while its first is being handled here (409).

    API ──> RunService ──> RunScheduler (LocalScheduler | a database one)
                 │                │
                 ├─> RunQueries   └─> RunLedger: store write, then signals, feed, hooks
                 └─> ProjectInspector (plans, on the planner thread)
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from typing import Any

from app.domain.callers import Caller
from app.domain.discovery import DatasetInfo, PipelineDetail, PipelineSummary, PlanDetail
from app.domain.idempotency import IdempotencyKeys, check_same_body
from app.domain.ledger import RunLedger, logs_key
from app.domain.ports import (
    IdempotencyKey,
    ProjectInspector,
    RunExecutor,
    RunHooks,
    RunScheduler,
    RunStore,
    StoredLogLine,
)
from app.domain.queries import RunQueries
from app.domain.runs import (
    TERMINAL_STATUSES,
    Run,
    RunEvent,
    RunPlan,
    RunSpec,
    RunStatus,
    node_progress,
    utcnow,
)
from app.domain.scheduler import LocalScheduler
from app.domain.signals import ChangeSignal, StateChange
from app.domain.views import RunListPage, RunView
from app.errors import IdempotencyKeyTaken

__all__ = ["RunService", "logs_key"]


class RunService:
    """The run lifecycle as the API sees it. Construct, ``await start()``, use,
    ``await stop()``; ``RunService.local(...)`` builds the embedded one."""

    def __init__(
        self,
        ledger: RunLedger,
        scheduler: RunScheduler,
        inspector: ProjectInspector,
        *,
        idempotency_ttl_seconds: float = 24 * 3600.0,
    ) -> None:
        self._ledger = ledger
        self._scheduler = scheduler
        self._inspector = inspector
        self._planner = ThreadPoolExecutor(1, thread_name_prefix="kedro-planner")
        self._keys = IdempotencyKeys(idempotency_ttl_seconds)
        self.queries = RunQueries(ledger, scheduler.waiting_for)

    @classmethod
    def local(
        cls,
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
    ) -> RunService:
        """The embedded service: this process's scheduler over ``executor``."""
        ledger = RunLedger(store, hooks)
        scheduler = LocalScheduler(
            ledger,
            executor,
            cancel_grace_seconds=cancel_grace_seconds,
            max_queued_runs=max_queued_runs,
            default_timeout_seconds=default_timeout_seconds,
            max_timeout_seconds=max_timeout_seconds,
        )
        return cls(ledger, scheduler, inspector, idempotency_ttl_seconds=idempotency_ttl_seconds)

    # -- lifecycle -----------------------------------------------------------

    async def start(self) -> None:
        await self._scheduler.start()

    async def stop(self, drain_seconds: float = 0.0) -> None:
        """See ``RunScheduler.stop``; then the threads end."""
        try:
            await self._scheduler.stop(drain_seconds)
        finally:
            self._ledger.close()
            self._planner.shutdown(wait=True)

    async def drain(self, seconds: float) -> None:
        await self._scheduler.drain(seconds)

    def end_drain(self) -> None:
        self._scheduler.end_drain()

    def stop_now(self) -> None:
        self._scheduler.stop_now()

    @property
    def accepting(self) -> bool:
        """False once shutdown has begun: submissions get 503."""
        return self._scheduler.accepting

    @property
    def stopping(self) -> bool:
        return self._scheduler.stopping

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
        store = self._ledger.store
        found = await self._ledger.read(lambda: store.find_key(key.principal, key.key, since))
        if found is None:
            try:
                return await self.submit(spec, run_id, key, caller=caller), False
            except IdempotencyKeyTaken:
                # Another process stored a run under the key meanwhile: replay that one.
                found = await self._ledger.read(
                    lambda: store.find_key(key.principal, key.key, since)
                )
                if found is None:
                    raise
        body_hash, original = found
        check_same_body(key, body_hash)
        return await self.get(original, caller=caller), True

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
        self._scheduler.check_admission(spec)
        # Never on the event loop, however small the plan looks: its cost grows with the
        # project and the request. One planner thread, as Kedro's resolvers are
        # process-global and resolution is serialised anyway.
        loop = asyncio.get_running_loop()
        plan = await loop.run_in_executor(self._planner, self._inspector.plan, spec)
        run = self._new_run(spec, run_id, plan, caller)
        live_since = self._keys.live_since(run.queued_at)
        # Shielded: once the insert is under way, a cancelled request must not leave the
        # run committed but unknown to the scheduler.
        run = await asyncio.shield(self._scheduler.accept(run, key, live_since))
        waiting_for = await self._scheduler.waiting_for(run_id, caller)
        return RunView(run, node_progress(run, []), waiting_for)

    def _new_run(self, spec: RunSpec, run_id: str, plan: RunPlan, caller: Caller) -> Run:
        """The run as planned, queued now; the store gives it its save version."""
        return Run(
            run_id=run_id,
            save_version="",
            status=RunStatus.QUEUED,
            spec=spec,
            nodes=plan.nodes,
            footprint=plan.footprint,
            env=self._inspector.env,
            kedro_version=self._inspector.kedro_version,
            project_commit=self._inspector.project_commit,
            queued_at=utcnow(),
            owner=caller.name,
        )

    async def cancel(self, run_id: str, *, caller: Caller) -> RunView:
        """Cancel a queued run now, or ask a running one to stop. Raises RunNotFound
        (also for a run ``caller`` may not see), RunStateConflict (it already finished)."""
        await self._scheduler.cancel(run_id, caller)
        return await self.get(run_id, caller=caller)

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

    # -- queries --------------------------------------------------------------

    async def resolve_run_id(self, run_id: str, *, caller: Caller) -> str:
        """The run id ``run_id`` stands for: itself, or that of the run given it as save
        version (what Kedro's ``POST /run`` answers as its ``run_id``)."""
        return await self.queries.resolve(run_id, caller)

    async def get(self, run_id: str, wait_seconds: float = 0.0, *, caller: Caller) -> RunView:
        """The run with its node progress. With ``wait_seconds``, hold on until the run
        ends or that time passes (a long poll), then answer. Raises RunNotFound (also
        for a run ``caller`` may not see)."""
        if wait_seconds <= 0:
            return await self.queries.view(run_id, caller)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + wait_seconds
        # A wake-up is a hint, not the answer: the run is read again, and the wait goes
        # on until it has ended, the time is up, or shutdown began. With a recheck
        # period (several replicas), a wake-up another process's notice missed costs at
        # most that period.
        recheck = self._scheduler.recheck_seconds or wait_seconds
        while True:
            # Registered before the read, so an end recorded in between still wakes us.
            with self._ledger.finish_waiters.registered(run_id) as ended:
                view = await self.queries.view(run_id, caller)
                remaining = deadline - loop.time()
                if view.run.status in TERMINAL_STATUSES or remaining <= 0:
                    return view
                if not self.accepting and ended.done():
                    return view  # shutting down: answer with the run as it is
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(ended, min(remaining, recheck))
                if not self.accepting:
                    return await self.queries.view(run_id, caller)

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
        return await self.queries.list_runs(statuses, pipeline, cursor, limit, caller)

    async def events(
        self, run_id: str, after: int, limit: int, *, caller: Caller
    ) -> list[RunEvent]:
        """The run's events with ``seq > after``, in order. Raises RunNotFound."""
        return await self.queries.events(run_id, after, limit, caller)

    async def logs(
        self, run_id: str, after: int, min_level: int, limit: int, *, caller: Caller
    ) -> tuple[list[StoredLogLine], int]:
        """The run's log lines after ``after`` at ``min_level`` or above, and how many of
        its records were dropped over the cap. Raises RunNotFound."""
        return await self.queries.logs(run_id, after, min_level, limit, caller)

    async def outputs(self, run_id: str, *, caller: Caller) -> dict[str, object] | None:
        """What the run saved and returned (None until it has ended). Raises RunNotFound."""
        return await self.queries.outputs(run_id, caller)

    async def status_of(self, run_id: str, *, caller: Caller) -> RunStatus:
        """The run's current status. Raises RunNotFound."""
        return await self.queries.status_of(run_id, caller)

    @property
    def event_signal(self) -> ChangeSignal:
        """Keyed by run id (events) and ``logs_key(run_id)``: something was recorded."""
        return self._ledger.event_signal

    @property
    def change_signal(self) -> ChangeSignal:
        """Key ``ledger.FEED``: some run's state changed."""
        return self._ledger.change_signal

    async def changes_after(self, after: int, *, caller: Caller) -> list[StateChange]:
        """Run state changes after id ``after`` that ``caller`` may see, in id order."""
        return await self._ledger.changes_after(after, caller)

    async def last_change_id(self) -> int:
        return await self._ledger.last_change_id()

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
        waiting_for = await self._scheduler.conflicting(plan.footprint, caller)
        return replace(detail, waiting_for=waiting_for)

    async def snapshot(self, params: dict[str, Any] | None) -> Any:
        """Kedro's own project snapshot, resolved with ``params``."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._planner, self._inspector.snapshot, params)

    @property
    def kedro_version(self) -> str:
        return self._inspector.kedro_version

    # -- gauges ---------------------------------------------------------------

    @property
    def queue_depth(self) -> int:
        return self._scheduler.queue_depth

    @property
    def ready_workers(self) -> int:
        return self._scheduler.ready_workers

    async def workers_available(self) -> int:
        """Workers ready to take runs: this process's, or, in cluster mode, every live
        replica's. Raises ServiceUnavailable."""
        return await self._scheduler.workers_available()

    @property
    def busy_workers(self) -> int:
        return self._scheduler.busy_workers

    @property
    def idle_workers(self) -> int:
        return self._scheduler.idle_workers

    @property
    def waiting_on_conflicts(self) -> int:
        return self._scheduler.waiting_on_conflicts

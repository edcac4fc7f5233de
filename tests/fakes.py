"""In-memory fakes of the domain's ports, so its rules run in milliseconds: a run store
that keeps the transition table's conditions, an executor a test drives by hand, and a
project inspector with fixed plans. Never fakes of Kedro: only of our own ports."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from app.domain import reports
from app.domain.discovery import DatasetInfo, PipelineDetail, PipelineSummary, PlanDetail
from app.domain.ports import (
    AcknowledgeAttempt,
    AppendEvent,
    AppendLogs,
    IdempotencyKey,
    RecordOutputs,
    RunAssignment,
    RunPage,
    StoredLogLine,
    StoreWrite,
    Transition,
)
from app.domain.retention import PruneCounts
from app.domain.runs import (
    ACTIVE_STATUSES as ACTIVE,
)
from app.domain.runs import (
    TERMINAL_STATUSES,
    EventType,
    FailureReason,
    Footprint,
    Run,
    RunEvent,
    RunPlan,
    RunSpec,
    RunStatus,
    sources_of,
    utcnow,
)
from app.domain.save_versions import SaveVersionClock
from app.domain.signals import StateChange
from app.errors import IdempotencyKeyTaken


class InMemoryRunStore:
    """The RunStore port in memory: conditional transitions, attempts, events, logs."""

    def __init__(self) -> None:
        self.runs: dict[str, Run] = {}
        self.events: dict[str, list[RunEvent]] = {}
        self.logs: dict[str, list[StoredLogLine]] = {}
        self.outputs: dict[str, dict[str, object]] = {}
        self.keys: dict[tuple[str, str], tuple[str, str, datetime]] = {}
        self.changes: list[StateChange] = []
        self._clock = SaveVersionClock()
        self._lock = threading.Lock()

    def close(self) -> None:
        pass

    def insert_run(
        self,
        run: Run,
        then: Sequence[StoreWrite] = (),
        key: IdempotencyKey | None = None,
        key_live_since: datetime | None = None,
    ) -> Run:
        with self._lock:
            if key is not None:
                found = self.keys.get((key.principal, key.key))
                if found is not None and (key_live_since is None or found[2] >= key_live_since):
                    raise IdempotencyKeyTaken("the key names another run")
            if not run.save_version:
                run = replace(run, save_version=self._clock.next(run.queued_at))
            self.runs[run.run_id] = run
            self.events[run.run_id] = []
            self._event(AppendEvent(run.run_id, EventType.RUN_QUEUED, run.queued_at))
            self._change(run.run_id, RunStatus.QUEUED, run.queued_at)
            for write in then:
                self._apply(write)
            if key is not None:
                self.keys[(key.principal, key.key)] = (key.body_hash, run.run_id, run.queued_at)
            return run

    def find_key(self, principal: str, key: str, since: datetime) -> tuple[str, str] | None:
        found = self.keys.get((principal, key))
        if found is None or found[2] < since:
            return None
        return found[0], found[1]

    def write(self, writes: Sequence[StoreWrite]) -> list[bool]:
        with self._lock:
            return [self._apply(write) for write in writes]

    def _apply(self, write: StoreWrite) -> bool:
        if isinstance(write, AppendEvent):
            self._event(write)
            return True
        if isinstance(write, AppendLogs):
            lines = self.logs.setdefault(write.run_id, [])
            for line in write.lines:
                lines.append(StoredLogLine(len(lines) + 1, line))
            return True
        if isinstance(write, RecordOutputs):
            self.outputs[write.run_id] = write.outputs
            return True
        run = self.runs.get(write.run_id)
        if run is None:
            return False
        if isinstance(write, AcknowledgeAttempt):
            if run.status not in (RunStatus.RUNNING, RunStatus.CANCELLING):
                return False
            self.runs[run.run_id] = replace(run, acknowledged_attempts=run.attempts)
            return True
        sources = sources_of(write.target) & (write.only_from or sources_of(write.target))
        if run.status not in sources:
            return False
        if write.target is RunStatus.CANCELLING:
            run = replace(run, cancel_requested_at=write.at)
        data = dict(write.event_data)
        if write.new_save_version:
            write = replace(write, save_version=self._clock.next(write.at))
            data["next_save_version"] = write.save_version
        run = self.runs[run.run_id] = _moved(run, write)
        if write.target is RunStatus.RUNNING:
            data["save_version"] = run.current_save_version
        self._event(AppendEvent(run.run_id, write.event, write.at, None, data))
        self._change(run.run_id, write.target, write.at)
        return True

    def _change(self, run_id: str, status: RunStatus, at: datetime) -> None:
        owner = self.runs[run_id].owner
        self.changes.append(StateChange(len(self.changes) + 1, run_id, str(status), at, owner))

    def changes_after(
        self, after_id: int, limit: int, owner: str | None = None
    ) -> list[StateChange]:
        found = [c for c in self.changes if c.id > after_id and owner in (None, c.owner)]
        return found[:limit]

    def last_change_id(self) -> int:
        return len(self.changes)

    def _event(self, event: AppendEvent) -> None:
        events = self.events.setdefault(event.run_id, [])
        seq = len(events) + 1
        events.append(RunEvent(event.run_id, seq, event.type, event.at, event.node, event.data))

    def get_run(self, run_id: str) -> Run | None:
        return self.runs.get(run_id)

    def find_run_by_save_version(self, save_version: str) -> Run | None:
        for run in self.runs.values():
            if save_version in (run.save_version, run.attempt_save_version):
                return run
        return None

    def list_runs(
        self,
        statuses: Sequence[RunStatus],
        pipeline: str | None,
        before: str | None,
        limit: int,
        owner: str | None = None,
    ) -> RunPage:
        chosen = [
            run
            for run in sorted(self.runs.values(), key=lambda r: r.save_version, reverse=True)
            if (not statuses or run.status in statuses)
            and (pipeline is None or pipeline in run.spec.pipeline_names)
            and (before is None or run.save_version < before)
            and (owner is None or run.owner == owner)
        ]
        page = chosen[:limit]
        return RunPage(page, page[-1].save_version if len(chosen) > limit else None)

    def list_events(self, run_id: str, after: int, limit: int) -> list[RunEvent]:
        return [e for e in self.events.get(run_id, []) if e.seq > after][:limit]

    def list_logs(
        self, run_id: str, after: int, min_level: int, limit: int
    ) -> tuple[list[StoredLogLine], int]:
        return [line for line in self.logs.get(run_id, []) if line.seq > after][:limit], 0

    def get_outputs(self, run_id: str) -> dict[str, object] | None:
        return self.outputs.get(run_id)

    def runs_in(self, statuses: Sequence[RunStatus]) -> list[Run]:
        chosen = [run for run in self.runs.values() if run.status in statuses]
        return sorted(chosen, key=lambda run: run.current_save_version)

    def last_save_version(self) -> str | None:
        issued = [v for r in self.runs.values() for v in (r.save_version, r.attempt_save_version)]
        return max((v for v in issued if v), default=None)

    def prune_batch(
        self, finished_before: datetime | None, keys_before: datetime, limit: int
    ) -> PruneCounts:
        raise NotImplementedError("retention is tested on the SQL store")

    def count_prunable(
        self, finished_before: datetime | None, keys_before: datetime
    ) -> PruneCounts:
        raise NotImplementedError("retention is tested on the SQL store")

    def event_types(self, run_id: str) -> list[str]:
        return [str(event.type) for event in self.events.get(run_id, [])]


def _moved(run: Run, move: Transition) -> Run:
    if move.target is RunStatus.RUNNING:
        run = replace(run, started_at=move.at, attempts=run.attempts + 1)
    elif move.target is RunStatus.QUEUED:
        attempts = run.attempts - 1 if move.attempt_given_back else run.attempts
        run = replace(run, attempt_save_version=move.save_version, attempts=attempts)
    elif move.target in TERMINAL_STATUSES:
        run = replace(run, finished_at=move.at)
    if move.error is not None:
        run = replace(run, error=move.error)
    return replace(run, status=move.target)


@dataclass
class ScriptedExecutor:
    """The RunExecutor port, driven by the test: ``execute`` records the assignment;
    the test ``report``s what the worker would; ``kill`` reports the run lost."""

    slots: int = 1
    assigned: list[RunAssignment] = field(default_factory=list)
    running: dict[str, RunAssignment] = field(default_factory=dict)
    proceeded: list[str] = field(default_factory=list)
    cancels: list[str] = field(default_factory=list)
    kills: list[str] = field(default_factory=list)
    _deliver: Callable[[reports.Report], None] | None = None

    async def start(self, deliver: Callable[[reports.Report], None]) -> None:
        self._deliver = deliver

    async def stop(self) -> None:
        for run_id in list(self.running):
            self.lose(run_id)

    def idle_slots(self) -> int:
        return self.slots - len(self.running)

    @property
    def ready_workers(self) -> int:
        return self.slots

    def execute(self, assignment: RunAssignment) -> None:
        assert len(self.running) < self.slots, "handed a run with no slot free"
        self.assigned.append(assignment)
        self.running[assignment.run_id] = assignment

    def proceed(self, run_id: str) -> None:
        self.proceeded.append(run_id)

    def request_cancel(self, run_id: str) -> None:
        self.cancels.append(run_id)

    def kill(self, run_id: str) -> bool:
        if run_id not in self.running:
            return False
        self.kills.append(run_id)
        self.lose(run_id)
        return True

    def report(self, report: reports.Report) -> None:
        """Deliver ``report`` as the run's worker would; an end frees the slot."""
        assert self._deliver is not None
        if isinstance(report, reports.RunSucceeded | reports.RunFailed | reports.RunCancelled):
            self.running.pop(report.run_id, None)
        self._deliver(report)

    def lose(self, run_id: str) -> None:
        self.report(
            reports.RunFailed(run_id, utcnow(), FailureReason.WORKER_LOST, "WorkerLost", "-9")
        )


@dataclass
class StaticInspector:
    """The ProjectInspector port with a fixed footprint per pipeline name."""

    footprints: dict[str, Footprint] = field(default_factory=dict)
    env: str | None = None
    kedro_version: str = "1.7.0"
    project_commit: str | None = None

    def plan(self, spec: RunSpec) -> RunPlan:
        name = spec.pipeline_names[0] if spec.pipeline_names else "__default__"
        return RunPlan(nodes=("node",), footprint=self.footprints.get(name, Footprint()))

    def plan_detail(self, spec: RunSpec) -> tuple[RunPlan, PlanDetail]:
        raise NotImplementedError

    def list_pipelines(self) -> list[PipelineSummary]:
        return []

    def pipeline(self, name: str) -> PipelineDetail:
        raise NotImplementedError

    def list_datasets(self) -> list[DatasetInfo]:
        return []

    def snapshot(self, params: dict[str, Any] | None) -> Any:
        raise NotImplementedError


@dataclass
class RecordingHooks:
    """The RunHooks port: what each hook was told, in order."""

    calls: list[tuple[str, str, str]] = field(default_factory=list)

    def run_submitted(self, run_id: str, pipeline_names: list[str], at: datetime) -> None:
        self.calls.append(("run_submitted", run_id, ""))

    def run_started(self, run_id: str, pipeline_names: list[str], at: datetime) -> None:
        self.calls.append(("run_started", run_id, ""))

    def run_finished(
        self,
        run_id: str,
        pipeline_names: list[str],
        status: str,
        started_at: datetime | None,
        finished_at: datetime,
        error: dict[str, str] | None,
    ) -> None:
        self.calls.append(("run_finished", run_id, status))

    def event_recorded(self, run_id: str, event_type: str, at: datetime, node: str | None) -> None:
        self.calls.append(("event_recorded", run_id, event_type))


class FencedRunStore(InMemoryRunStore):
    """The in-memory store with the cluster's fences: which replica claimed each run, and
    writes fenced on a replica applying only while it still holds the run."""

    def __init__(self) -> None:
        super().__init__()
        self.claimed_by: dict[str, str | None] = {}

    def _apply(self, write: StoreWrite) -> bool:
        fence = getattr(write, "fence", None)
        if fence is not None and self.claimed_by.get(write.run_id) != fence:
            return False
        applied = super()._apply(write)
        if applied and isinstance(write, Transition):
            if write.target is RunStatus.RUNNING:
                self.claimed_by[write.run_id] = write.claim_for
            elif write.target is RunStatus.QUEUED:
                self.claimed_by[write.run_id] = None
        return applied


class InMemoryCluster:
    """The ClusterStore port in memory, over a FencedRunStore: leases on one clock
    (``time.monotonic``, standing in for the database's), claims under one lock and only
    under a current lease, take-overs in one step. ``unreachable`` replicas (or all, with
    ``down``) get the error a lost database connection gives."""

    def __init__(self, store: FencedRunStore) -> None:
        self.store = store
        self.heartbeats: dict[str, float] = {}
        self.unreachable: set[str] = set()
        self.down = False
        self._lock = threading.Lock()

    def _reach(self, instance: str | None = None) -> None:
        if self.down or instance in self.unreachable:
            raise ConnectionError("the database cannot be reached")

    def _current(self, instance: str, lease_seconds: float) -> bool:
        beat = self.heartbeats.get(instance)
        return beat is not None and beat >= time.monotonic() - lease_seconds

    def join(self, instance: str, ready_workers: int) -> None:
        self._reach(instance)
        self.heartbeats.setdefault(instance, time.monotonic())

    def heartbeat(self, instance: str, ready_workers: int, busy: int) -> bool:
        self._reach(instance)
        if instance not in self.heartbeats:
            return False
        self.heartbeats[instance] = time.monotonic()
        return True

    def leave(self, instance: str) -> None:
        self._reach(instance)
        self.heartbeats.pop(instance, None)

    def expired_instances(self, lease_seconds: float) -> list[str]:
        self._reach()
        return [i for i in list(self.heartbeats) if not self._current(i, lease_seconds)]

    def claimed_by(self, instance: str) -> list[Run]:
        self._reach(instance)
        return [
            run
            for run in self.store.runs.values()
            if self.store.claimed_by.get(run.run_id) == instance and run.status in ACTIVE
        ]

    def live_workers(self, lease_seconds: float) -> int:
        self._reach()
        return len([i for i in self.heartbeats if self._current(i, lease_seconds)])

    def queued_count(self) -> int:
        self._reach()
        return sum(1 for run in self.store.runs.values() if run.status is RunStatus.QUEUED)

    def dispatch_state(self) -> tuple[list[Run], list[Run]]:
        self._reach()
        found = list(self.store.runs.values())
        queued = [run for run in found if run.status is RunStatus.QUEUED]
        active = [run for run in found if run.status in ACTIVE]
        return sorted(queued, key=lambda run: run.current_save_version), active

    def claim(
        self,
        instance: str,
        lease_seconds: float,
        choose: Callable[[list[Run], list[Run]], list[Transition]],
    ) -> tuple[list[Run], list[StoreWrite]]:
        self._reach(instance)
        with self._lock:
            if not self._current(instance, lease_seconds):
                return [], []
            queued, active = self.dispatch_state()
            before = {run.run_id: run for run in queued}
            moves = [move for move in choose(queued, active) if move.claim_for == instance]
            done = self.store.write(moves)
            claimed = [m for m, ok in zip(moves, done, strict=True) if ok]
            return [before[move.run_id] for move in claimed], list(claimed)

    def take_over(
        self, instance: str, lease_seconds: float, settle: Callable[[list[Run]], list[Transition]]
    ) -> tuple[list[Run], list[StoreWrite]]:
        self._reach()
        with self._lock:
            if instance not in self.heartbeats or self._current(instance, lease_seconds):
                return [], []
            del self.heartbeats[instance]
            return self._settle(
                lambda run: self.store.claimed_by.get(run.run_id) == instance, settle
            )

    def settle_orphans(
        self, settle: Callable[[list[Run]], list[Transition]]
    ) -> tuple[list[Run], list[StoreWrite]]:
        self._reach()
        with self._lock:
            return self._settle(
                lambda run: self.store.claimed_by.get(run.run_id) not in self.heartbeats, settle
            )

    def _settle(
        self, which: Callable[[Run], bool], settle: Callable[[list[Run]], list[Transition]]
    ) -> tuple[list[Run], list[StoreWrite]]:
        found = [run for run in self.store.runs.values() if run.status in ACTIVE and which(run)]
        moves = settle(found)
        done = self.store.write(moves)
        return found, [m for m, ok in zip(moves, done, strict=True) if ok]


class SilentListener:
    """The ChangeListener port, hearing nothing: notices are lost, so what the cluster
    scheduler does without them (its re-checks) is what is tested."""

    def start(self, deliver: Callable[[str], None]) -> None:
        self.deliver = deliver

    def stop(self) -> None:
        pass

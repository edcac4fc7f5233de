"""The interfaces the run service needs from the world, each with one job.

Implementations: ``persistence.store.SqlRunStore``, ``kedro_bridge.inspector.KedroInspector``
and ``worker.pool.ProcessWorkerPool``. Tests may pass in-memory fakes.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from app.domain.callers import Caller
from app.domain.discovery import DatasetInfo, PipelineDetail, PipelineSummary, PlanDetail
from app.domain.reports import LogLine, Report
from app.domain.runs import (
    EventType,
    Footprint,
    Run,
    RunError,
    RunEvent,
    RunPlan,
    RunSpec,
    RunStatus,
)
from app.domain.signals import StateChange


@dataclass(frozen=True)
class Transition:
    """Move a run to ``target`` (only from a state the transition table allows) and,
    if that happened, record ``event``. Applied atomically with the rest of its batch.
    A move to RUNNING counts one more attempt, and the store adds the attempt's save
    version to the event's data (``save_version``)."""

    run_id: str
    target: RunStatus
    at: datetime
    event: EventType
    error: RunError | None = None
    event_data: dict[str, object] = field(default_factory=dict)
    # A move to QUEUED (a retry): the save version of the next attempt, as given; or,
    # with ``new_save_version``, a fresh one the store allocates in the transaction,
    # stores, and adds to the event's data (``next_save_version``).
    save_version: str | None = None
    new_save_version: bool = False
    # A move to QUEUED of a run whose latest attempt no worker took: it is given back.
    attempt_given_back: bool = False
    # Only from these of the allowed sources (a queued run's cancel or timeout must not
    # end a run some other replica has just claimed).
    only_from: frozenset[RunStatus] | None = None
    # Cluster mode: a move to RUNNING claims the run for this replica...
    claim_for: str | None = None
    # ...and a replica's moves of a run apply only while the run is still claimed by it
    # (a replica declared dead cannot end a run another one took over).
    fence: str | None = None


@dataclass(frozen=True)
class AppendEvent:
    run_id: str
    type: EventType
    at: datetime
    node: str | None = None
    data: dict[str, object] = field(default_factory=dict)
    # Cluster mode: only while the run is still claimed by this replica (a replica
    # declared dead does not add its stale attempt's node events to the next attempt's).
    fence: str | None = None


@dataclass(frozen=True)
class AcknowledgeAttempt:
    """A worker took the run's latest attempt (only while the run is active, and, with
    ``fence``, still claimed by that replica)."""

    run_id: str
    fence: str | None = None


@dataclass(frozen=True)
class AppendLogs:
    run_id: str
    lines: tuple[LogLine, ...]
    dropped: int = 0
    fence: str | None = None  # as AppendEvent's


@dataclass(frozen=True)
class RecordOutputs:
    run_id: str
    outputs: dict[str, object]  # {"saved": [...], "free": [...]}
    fence: str | None = None  # as AppendEvent's


StoreWrite = Transition | AppendEvent | AppendLogs | RecordOutputs | AcknowledgeAttempt


@dataclass(frozen=True)
class IdempotencyKey:
    """A caller's Idempotency-Key with a hash of the request body it came with."""

    principal: str
    key: str
    body_hash: str


@dataclass(frozen=True)
class StoredLogLine:
    seq: int
    line: LogLine


@dataclass(frozen=True)
class RunPage:
    runs: list[Run]
    next_cursor: str | None


class RunStore(Protocol):
    """Durable runs and events. Methods block; callers keep them off the event loop.

    Every method may be called from any thread, and several stores (processes) may write
    to one database at once: what the store numbers (event seqs, save versions, state
    change ids) it allocates in the database, in the transaction that uses it.
    """

    def insert_run(
        self,
        run: Run,
        then: Sequence[StoreWrite] = (),
        key: IdempotencyKey | None = None,
        key_live_since: datetime | None = None,
    ) -> Run:
        """Insert ``run`` (queued, with its ``run_queued`` event), apply ``then`` and record
        ``key``, all in one transaction; returns ``run`` with the save version it was
        stored under. A ``run.save_version`` of ``""`` is allocated in that transaction:
        unique, and increasing in commit order across every writer (a given one is kept,
        and later ones come after it).

        A record of ``key`` made before ``key_live_since`` has expired and is replaced.
        A live one (any, without ``key_live_since``), or one another writer records
        first, raises IdempotencyKeyTaken: nothing is stored, and ``find_key`` then
        names the run to replay."""
        ...

    def find_key(self, principal: str, key: str, since: datetime) -> tuple[str, str] | None:
        """(body hash, run id) of ``key`` if recorded at or after ``since``."""
        ...

    def write(self, writes: Sequence[StoreWrite]) -> list[bool]:
        """Apply every write in one transaction; returns, per write, whether it applied."""
        ...

    def get_run(self, run_id: str) -> Run | None: ...

    def find_run_by_save_version(self, save_version: str) -> Run | None:
        """The run given ``save_version`` for its first attempt or its latest one."""
        ...

    def list_runs(
        self,
        statuses: Sequence[RunStatus],
        pipeline: str | None,
        before: str | None,
        limit: int,
        owner: str | None = None,
    ) -> RunPage:
        """Runs newest first; only ``owner``'s when given."""
        ...

    def list_events(self, run_id: str, after: int, limit: int) -> list[RunEvent]: ...

    def list_logs(
        self, run_id: str, after: int, min_level: int, limit: int
    ) -> tuple[list[StoredLogLine], int]:
        """Log lines with ``seq > after`` at ``min_level`` or above, and how many of the
        run's records were dropped over its cap."""
        ...

    def get_outputs(self, run_id: str) -> dict[str, object] | None:
        """What the run wrote and returned, once recorded; None before."""
        ...

    def runs_in(self, statuses: Sequence[RunStatus]) -> list[Run]:
        """Every run in one of ``statuses``, oldest submission first."""
        ...

    def last_save_version(self) -> str | None: ...

    def changes_after(
        self, after_id: int, limit: int, owner: str | None = None
    ) -> list[StateChange]:
        """Up to ``limit`` run state changes with ``id > after_id``, in id order; only
        ``owner``'s runs' when given. Ids are global and durable, and become visible in
        order: following with the last id seen never skips a change."""
        ...

    def last_change_id(self) -> int:
        """The id of the newest state change (0 before the first)."""
        ...


class ProjectInspector(Protocol):
    """The Kedro project as the API process sees it. Calls are serialised internally."""

    env: str | None
    kedro_version: str
    project_commit: str | None

    def plan(self, spec: RunSpec) -> RunPlan:
        """Validate ``spec`` against the project. Raises ``InvalidRunRequest``. Blocks."""
        ...

    def plan_detail(self, spec: RunSpec) -> tuple[RunPlan, PlanDetail]:
        """``plan`` plus what the run would need, write and read. Blocks."""
        ...

    def list_pipelines(self) -> list[PipelineSummary]: ...

    def pipeline(self, name: str) -> PipelineDetail:
        """Raises PipelineNotFound."""
        ...

    def list_datasets(self) -> list[DatasetInfo]: ...

    def snapshot(self, params: dict[str, Any] | None) -> Any:
        """Kedro's own project snapshot. Raises whatever Kedro raises."""
        ...


@dataclass(frozen=True)
class RunAssignment:
    """Everything a worker needs to execute one run."""

    run_id: str
    save_version: str
    spec: RunSpec


class RunExecutor(Protocol):
    """Where runs execute: a pool of slots, each running one run at a time.

    ``deliver`` is called on the event loop's thread for every report.
    """

    async def start(self, deliver: Callable[[Report], None]) -> None: ...

    async def stop(self) -> None: ...

    def idle_slots(self) -> int: ...

    @property
    def ready_workers(self) -> int:
        """Slots whose process is up and able to take a run."""
        ...

    def execute(self, assignment: RunAssignment) -> None:
        """Hand the run to a slot. It runs no node before ``proceed(run_id)``."""
        ...

    def proceed(self, run_id: str) -> None:
        """The slot's acknowledgement of the run (``RunStarted``) is recorded: the run
        may run its nodes."""
        ...

    def request_cancel(self, run_id: str) -> None: ...

    def kill(self, run_id: str) -> bool:
        """Stop the run's slot by force; its run is then reported as lost."""
        ...


class RunHooks(Protocol):
    """Who is told about runs (plugins: metrics, webhooks, ...). Called on the event
    loop after the fact is durable; must not raise and must return quickly."""

    def run_submitted(self, run_id: str, pipeline_names: list[str], at: datetime) -> None: ...

    def run_started(self, run_id: str, pipeline_names: list[str], at: datetime) -> None: ...

    def run_finished(
        self,
        run_id: str,
        pipeline_names: list[str],
        status: str,
        started_at: datetime | None,
        finished_at: datetime,
        error: dict[str, str] | None,
    ) -> None: ...

    def event_recorded(
        self, run_id: str, event_type: str, at: datetime, node: str | None
    ) -> None: ...


class RunScheduler(Protocol):
    """The one stateful owner of which runs are queued and running: queue, admission,
    deadlines, attempts, dispatch and recovery. ``domain.scheduler.LocalScheduler``
    keeps them in this process for its own pool (the embedded mode); a database one
    shares them between replicas. Call on the event loop."""

    stopping: bool
    # How long a wait may trust a wake-up to come: None in one process (every fact is
    # recorded here); with replicas, waits read the store again at least this often.
    recheck_seconds: float | None

    async def start(self) -> None: ...
    async def stop(self, drain_seconds: float = 0.0) -> None: ...
    async def drain(self, seconds: float) -> None: ...
    def end_drain(self) -> None: ...
    def stop_now(self) -> None: ...

    @property
    def accepting(self) -> bool: ...

    def check_admission(self, spec: RunSpec) -> None:
        """Raise InvalidRunRequest or QueueFull before any planning."""

    async def accept(
        self, run: Run, key: IdempotencyKey | None, key_live_since: datetime | None
    ) -> Run:
        """Commit ``run`` as queued (``key`` with it: see ``RunStore.insert_run``) and
        schedule it; the run as committed, with its save version."""

    async def cancel(self, run_id: str, caller: Caller) -> None:
        """Raises RunNotFound, RunStateConflict."""

    async def waiting_for(self, run_id: str, caller: Caller) -> list[str]: ...

    async def workers_available(self) -> int:
        """Workers ready to take runs, wherever they are (readiness). Raises
        ServiceUnavailable when that cannot be known (the database is unreachable)."""
        ...

    async def conflicting(self, footprint: Footprint, caller: Caller) -> list[str]: ...

    @property
    def queue_depth(self) -> int: ...
    @property
    def ready_workers(self) -> int: ...
    @property
    def busy_workers(self) -> int: ...
    @property
    def idle_workers(self) -> int: ...
    @property
    def waiting_on_conflicts(self) -> int: ...


class ClusterStore(Protocol):
    """What replicas sharing one database need of it beyond ``RunStore``: membership with
    heartbeats (a replica's lease on the runs it claimed), and claiming under one
    database-wide dispatch lock. Methods block."""

    def join(self, instance: str, ready_workers: int) -> None: ...

    def heartbeat(self, instance: str, ready_workers: int, busy: int) -> bool:
        """Renew ``instance``'s lease. False: it was declared dead (its runs were taken)."""
        ...

    def leave(self, instance: str) -> None: ...

    def expired_instances(self, lease_seconds: float) -> list[str]:
        """Replicas whose last heartbeat is older than ``lease_seconds`` (database clock)."""
        ...

    def claimed_by(self, instance: str) -> list[Run]:
        """The active runs ``instance`` claimed."""
        ...

    def live_workers(self, lease_seconds: float) -> int:
        """Ready workers summed over the replicas whose lease is current."""
        ...

    def claim(
        self,
        instance: str,
        lease_seconds: float,
        choose: Callable[[list[Run], list[Run]], list[Transition]],
    ) -> tuple[list[Run], list[StoreWrite]]:
        """Under the dispatch lock, and only while ``instance``'s lease is current:
        ``choose(queued, active)`` (queued runs in dispatch order, active runs of every
        replica) gives the claims (moves to RUNNING for ``instance``) to apply in the same
        transaction. Returns the runs whose claim applied, as they were before it, and the
        writes applied (to be announced)."""
        ...

    def take_over(
        self, instance: str, lease_seconds: float, settle: Callable[[list[Run]], list[Transition]]
    ) -> tuple[list[Run], list[StoreWrite]]:
        """In one transaction: remove ``instance`` if its lease has lapsed, and apply
        ``settle(its active runs)``; nothing if it renewed meanwhile."""
        ...

    def settle_orphans(
        self, settle: Callable[[list[Run]], list[Transition]]
    ) -> tuple[list[Run], list[StoreWrite]]:
        """Apply ``settle`` to the active runs no member replica holds."""
        ...

    def queued_count(self) -> int:
        """Runs queued, across every replica."""
        ...

    def dispatch_state(self) -> tuple[list[Run], list[Run]]:
        """(queued runs in dispatch order, active runs), as one snapshot."""
        ...


class ChangeListener(Protocol):
    """Tells this process what other processes recorded: ``start(deliver)`` calls
    ``deliver(notice)`` on a thread of its own for each notice (see
    ``cluster_scheduler``). ``start`` and ``stop`` block."""

    def start(self, deliver: Callable[[str], None]) -> None: ...

    def stop(self) -> None: ...

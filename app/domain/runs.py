"""What a run is: its request, its states, its failure, its events."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

# Re-exported: the request is part of what a run is; its module is its own for the
# declaration of its filters.
from app.domain.run_spec import RunSpec as RunSpec


def utcnow() -> datetime:
    return datetime.now(UTC)


class RunStatus(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    CANCELLING = "cancelling"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"


TERMINAL_STATUSES = frozenset({RunStatus.SUCCEEDED, RunStatus.FAILED, RunStatus.CANCELLED})
ACTIVE_STATUSES = frozenset({RunStatus.RUNNING, RunStatus.CANCELLING})

# The one table of allowed moves. Terminal states have no way out.
# RUNNING -> QUEUED is a retry (the request opted in with max_attempts); a cancelling
# run is never requeued: it ends cancelled. QUEUED -> FAILED: still queued past its
# timeout (which counts from submission).
TRANSITIONS: dict[RunStatus, frozenset[RunStatus]] = {
    RunStatus.QUEUED: frozenset({RunStatus.RUNNING, RunStatus.CANCELLED, RunStatus.FAILED}),
    RunStatus.RUNNING: frozenset(
        {
            RunStatus.QUEUED,
            RunStatus.CANCELLING,
            RunStatus.SUCCEEDED,
            RunStatus.FAILED,
            RunStatus.CANCELLED,
        }
    ),
    RunStatus.CANCELLING: frozenset({RunStatus.SUCCEEDED, RunStatus.FAILED, RunStatus.CANCELLED}),
    RunStatus.SUCCEEDED: frozenset(),
    RunStatus.FAILED: frozenset(),
    RunStatus.CANCELLED: frozenset(),
}


def sources_of(target: RunStatus) -> frozenset[RunStatus]:
    """The states a run may be in for a move to ``target`` to be allowed."""
    return frozenset(src for src, targets in TRANSITIONS.items() if target in targets)


class FailureReason(StrEnum):
    ERROR = "error"  # the pipeline raised
    WORKER_LOST = "worker_lost"  # the worker process died, or the service did
    TIMEOUT = "timeout"
    INTERRUPTED = "interrupted"


class EventType(StrEnum):
    RUN_QUEUED = "run_queued"
    RUN_STARTED = "run_started"
    NODE_STARTED = "node_started"
    NODE_COMPLETED = "node_completed"
    NODE_FAILED = "node_failed"
    RUN_CANCEL_REQUESTED = "run_cancel_requested"
    RUN_REQUEUED = "run_requeued"  # the worker or the service was lost; another attempt follows
    RUN_SUCCEEDED = "run_succeeded"
    RUN_FAILED = "run_failed"
    RUN_CANCELLED = "run_cancelled"


TERMINAL_EVENT = {
    RunStatus.SUCCEEDED: EventType.RUN_SUCCEEDED,
    RunStatus.FAILED: EventType.RUN_FAILED,
    RunStatus.CANCELLED: EventType.RUN_CANCELLED,
}


@dataclass(frozen=True)
class RunError:
    """Why a run failed. ``message`` is already redacted."""

    reason: FailureReason
    type: str
    message: str


@dataclass(frozen=True)
class Footprint:
    """The persisted, non-versioned locations a run reads and writes.

    Two runs conflict when one writes what the other reads or writes. Writes of
    versioned datasets go to fresh version directories, so they only conflict
    with reads of the same dataset (which load "latest").
    """

    reads: frozenset[str] = frozenset()
    writes: frozenset[str] = frozenset()
    versioned_writes: frozenset[str] = frozenset()

    def conflicts_with(self, other: Footprint) -> bool:
        return (
            _overlap(self.writes, other.reads | other.writes)
            or _overlap(other.writes, self.reads)
            or _overlap(self.versioned_writes, other.reads)
            or _overlap(other.versioned_writes, self.reads)
        )

    def to_record(self) -> dict[str, list[str]]:
        return {
            "reads": sorted(self.reads),
            "writes": sorted(self.writes),
            "versioned_writes": sorted(self.versioned_writes),
        }

    @classmethod
    def from_record(cls, record: dict[str, list[str]]) -> Footprint:
        return cls(
            reads=frozenset(record.get("reads", ())),
            writes=frozenset(record.get("writes", ())),
            versioned_writes=frozenset(record.get("versioned_writes", ())),
        )


def _overlap(left: frozenset[str], right: frozenset[str]) -> bool:
    if left & right:
        return True
    # A directory dataset (partitions) overlaps every file below it.
    return any(_contains(a, b) or _contains(b, a) for a in left for b in right)


def _contains(parent: str, child: str) -> bool:
    return child.startswith(parent.rstrip("/") + "/")


@dataclass(frozen=True)
class RunPlan:
    """What validation learned about a request: the nodes it will run and what it touches."""

    nodes: tuple[str, ...]
    footprint: Footprint


@dataclass(frozen=True)
class Run:
    """A run as stored."""

    run_id: str
    save_version: str
    status: RunStatus
    spec: RunSpec
    nodes: tuple[str, ...]
    footprint: Footprint
    env: str | None
    kedro_version: str
    project_commit: str | None
    queued_at: datetime
    started_at: datetime | None = None
    finished_at: datetime | None = None
    cancel_requested_at: datetime | None = None
    error: RunError | None = None
    owner: str = "anonymous"  # the caller that created it (see app.domain.callers)
    attempts: int = 0  # times the run was handed to a worker (counted when claimed)
    attempt_save_version: str | None = None  # the save version of a retry, if any
    acknowledged_attempts: int = 0  # attempts a worker acknowledged taking

    @property
    def current_save_version(self) -> str:
        """What Kedro receives (or received) for the run's latest attempt. A retry gets a
        fresh one: its versioned datasets cannot reuse a version an earlier attempt may
        have begun to write (Kedro refuses to save over an existing version)."""
        return self.attempt_save_version or self.save_version


@dataclass(frozen=True)
class RunEvent:
    """One thing that happened to a run. ``seq`` orders a run's events from 1."""

    run_id: str
    seq: int
    type: EventType
    at: datetime
    node: str | None = None
    data: dict[str, Any] = field(default_factory=dict)


class NodeStatus(StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    SKIPPED = "skipped"


@dataclass(frozen=True)
class NodeProgress:
    name: str
    status: NodeStatus
    started_at: datetime | None = None
    finished_at: datetime | None = None


def node_progress(run: Run, events: list[RunEvent]) -> list[NodeProgress]:
    """Each node of the run with its state, derived from the run's node events."""
    started: dict[str, datetime] = {}
    finished: dict[str, tuple[NodeStatus, datetime]] = {}
    for event in events:
        if event.type is EventType.RUN_REQUEUED:  # a new attempt starts from scratch
            started.clear()
            finished.clear()
        if event.node is None:
            continue
        if event.type is EventType.NODE_STARTED:
            started[event.node] = event.at
        elif event.type is EventType.NODE_COMPLETED:
            finished[event.node] = (NodeStatus.COMPLETED, event.at)
        elif event.type is EventType.NODE_FAILED:
            finished[event.node] = (NodeStatus.FAILED, event.at)
    never_ran = NodeStatus.SKIPPED if run.status in TERMINAL_STATUSES else NodeStatus.PENDING
    progress = []
    for name in run.nodes:
        if name in finished:
            status, finished_at = finished[name]
            progress.append(NodeProgress(name, status, started.get(name), finished_at))
        elif name in started:
            interrupted = run.status in TERMINAL_STATUSES
            status = NodeStatus.FAILED if interrupted else NodeStatus.RUNNING
            progress.append(NodeProgress(name, status, started[name]))
        else:
            progress.append(NodeProgress(name, never_ran))
    return progress

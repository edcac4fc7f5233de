"""What a worker tells the service about the run it executes.

These travel from worker processes to the API process (pickled through a pipe),
so they hold only plain values.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from app.domain.runs import FailureReason


@dataclass(frozen=True)
class RunStarted:
    run_id: str
    at: datetime
    worker_pid: int


@dataclass(frozen=True)
class NodeStarted:
    run_id: str
    node: str
    at: datetime


@dataclass(frozen=True)
class NodeCompleted:
    run_id: str
    node: str
    at: datetime


@dataclass(frozen=True)
class NodeFailed:
    run_id: str
    node: str
    at: datetime
    error_type: str
    message: str


@dataclass(frozen=True)
class RunSucceeded:
    run_id: str
    at: datetime


@dataclass(frozen=True)
class RunFailed:
    run_id: str
    at: datetime
    reason: FailureReason
    error_type: str
    message: str


@dataclass(frozen=True)
class RunCancelled:
    run_id: str
    at: datetime
    detail: str


@dataclass(frozen=True)
class CapacityChanged:
    """A worker became ready (or idle): the service may dispatch more runs."""


@dataclass(frozen=True)
class LogLine:
    """One log record emitted inside a run, already formatted and redacted."""

    at: datetime
    level: str
    logger: str
    node: str | None
    message: str


@dataclass(frozen=True)
class RunLogs:
    """Log records of a run, in order; ``dropped`` counts records over the run's cap."""

    run_id: str
    lines: tuple[LogLine, ...]
    dropped: int = 0


@dataclass(frozen=True)
class RunOutputs:
    """What a run wrote and returned. ``saved``: one dict per dataset saved (name, type,
    versioned, save_version, filepath); ``free``: one dict per free output (name, type,
    and ``value`` inline when JSON-serialisable and small, else ``shape``/``length``)."""

    run_id: str
    saved: tuple[dict[str, object], ...]
    free: tuple[dict[str, object], ...]


RunReport = (
    RunStarted | NodeStarted | NodeCompleted | NodeFailed | RunSucceeded | RunFailed | RunCancelled
)
Report = RunReport | RunLogs | RunOutputs | CapacityChanged

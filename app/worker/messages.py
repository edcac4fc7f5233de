"""Messages on the pipes between the API process and its workers."""

from __future__ import annotations

from dataclasses import dataclass

from app.domain.ports import RunAssignment


@dataclass(frozen=True)
class StartRun:
    assignment: RunAssignment


@dataclass(frozen=True)
class CancelRun:
    run_id: str


@dataclass(frozen=True)
class ProceedWithRun:
    """The worker's acknowledgement of the run is recorded: it may run its nodes."""

    run_id: str


@dataclass(frozen=True)
class WorkerReady:
    pid: int


ToWorker = StartRun | CancelRun | ProceedWithRun

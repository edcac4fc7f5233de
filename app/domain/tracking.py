"""What the service remembers of each run it knows to be unfinished: its pipelines and
start time (for what hooks are told when it ends) and its owner (so the state-change
feed and ``waiting_for`` are filtered by caller). Event-loop only."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from app.domain.runs import Run


@dataclass
class TrackedRun:
    """None where the service has not learnt the field (yet)."""

    pipelines: list[str] | None = None
    owner: str | None = None
    started_at: datetime | None = None


class RunBook:
    """Unfinished runs by id, from when they are queued (or recovered) until they end."""

    def __init__(self) -> None:
        self._runs: dict[str, TrackedRun] = {}

    def track(self, run_id: str, pipelines: list[str], owner: str) -> None:
        record = self._runs.setdefault(run_id, TrackedRun())
        record.pipelines = pipelines
        record.owner = owner

    def track_recovered(self, run: Run) -> None:
        """Learn what is not yet known of ``run``, found active in the store."""
        record = self._runs.setdefault(run.run_id, TrackedRun())
        if record.pipelines is None:
            record.pipelines = list(run.spec.pipeline_names)
        if record.owner is None:
            record.owner = run.owner
        if run.started_at is not None and record.started_at is None:
            record.started_at = run.started_at

    def started(self, run_id: str, at: datetime) -> None:
        self._runs.setdefault(run_id, TrackedRun()).started_at = at

    def owner_of(self, run_id: str, default: str) -> str:
        record = self._runs.get(run_id)
        return default if record is None or record.owner is None else record.owner

    def forget(self, run_id: str) -> TrackedRun:
        """What was known of the run (all None if nothing), now forgotten: it ended."""
        return self._runs.pop(run_id, None) or TrackedRun()

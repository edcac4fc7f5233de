"""Runs as rows of the ``runs`` table, and back: the one place both directions meet."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import Row

from app.domain.runs import FailureReason, Footprint, Run, RunError, RunSpec, RunStatus
from app.persistence.storable import storable_json, storable_optional, storable_text


def run_values(run: Run) -> dict[str, Any]:
    return {
        "run_id": run.run_id,
        "save_version": run.save_version,
        "status": str(run.status),
        "spec": storable_json(run.spec.to_record()),
        "nodes": storable_json(list(run.nodes)),
        "footprint": storable_json(run.footprint.to_record()),
        "env": storable_optional(run.env),
        "kedro_version": storable_text(run.kedro_version),
        "project_commit": storable_optional(run.project_commit),
        "queued_at": run.queued_at,
        "owner": storable_text(run.owner),
    }


def run_from_row(row: Row[Any]) -> Run:
    error = None
    if row.failure_reason is not None:
        error = RunError(
            FailureReason(row.failure_reason), row.error_type or "", row.error_message or ""
        )
    return Run(
        run_id=row.run_id,
        save_version=row.save_version,
        status=RunStatus(row.status),
        spec=RunSpec.from_record(json.loads(row.spec)),
        nodes=tuple(json.loads(row.nodes)),
        footprint=Footprint.from_record(json.loads(row.footprint)),
        env=row.env,
        kedro_version=row.kedro_version,
        project_commit=row.project_commit,
        queued_at=row.queued_at,
        started_at=row.started_at,
        finished_at=row.finished_at,
        cancel_requested_at=row.cancel_requested_at,
        error=error,
        owner=row.owner,
        attempts=int(row.attempts),
        attempt_save_version=row.attempt_save_version,
        acknowledged_attempts=int(row.acknowledged_attempts),
    )

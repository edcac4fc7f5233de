"""The prune of finished runs and expired Idempotency-Keys, in SQL (see
``app.domain.retention``). Each call is one bounded transaction."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ColumnElement, Connection, Engine, and_, delete, func, select, tuple_

from app.domain.retention import PruneCounts
from app.domain.runs import TERMINAL_STATUSES
from app.persistence.tables import (
    idempotency_keys,
    run_events,
    run_logs,
    run_pipelines,
    runs,
    state_changes,
)

_TERMINAL = sorted(str(status) for status in TERMINAL_STATUSES)


def _finished_before(cutoff: datetime) -> ColumnElement[bool]:
    # The status test is what keeps every active run out of reach, whatever the cutoff.
    return and_(runs.c.status.in_(_TERMINAL), runs.c.finished_at < cutoff)


def prune_batch(
    writer: Engine, finished_before: datetime | None, keys_before: datetime, limit: int
) -> PruneCounts:
    """See ``RunPruner.prune_batch``."""
    with writer.begin() as connection:
        counts = PruneCounts()
        if finished_before is not None:
            counts = _prune_runs(connection, finished_before, limit)
        expired = connection.execute(
            select(idempotency_keys.c.principal, idempotency_keys.c.key)
            .where(idempotency_keys.c.created_at < keys_before)
            .limit(limit)
        ).all()
        if expired:
            pairs = [(row.principal, row.key) for row in expired]
            key_columns = tuple_(idempotency_keys.c.principal, idempotency_keys.c.key)
            connection.execute(delete(idempotency_keys).where(key_columns.in_(pairs)))
        return counts + PruneCounts(keys=len(expired))


def _prune_runs(connection: Connection, cutoff: datetime, limit: int) -> PruneCounts:
    run_ids = list(
        connection.scalars(
            select(runs.c.run_id)
            .where(_finished_before(cutoff))
            .order_by(runs.c.finished_at)
            .limit(limit)
        )
    )
    if not run_ids:
        return PruneCounts()
    # Children first: they refer to the run.
    keys_of_runs = idempotency_keys.c.run_id.in_(run_ids)
    keys = connection.execute(delete(idempotency_keys).where(keys_of_runs))
    logs = connection.execute(delete(run_logs).where(run_logs.c.run_id.in_(run_ids)))
    events = connection.execute(delete(run_events).where(run_events.c.run_id.in_(run_ids)))
    connection.execute(delete(state_changes).where(state_changes.c.run_id.in_(run_ids)))
    connection.execute(delete(run_pipelines).where(run_pipelines.c.run_id.in_(run_ids)))
    removed = connection.execute(
        delete(runs).where(and_(runs.c.run_id.in_(run_ids), runs.c.status.in_(_TERMINAL)))
    )
    return PruneCounts(removed.rowcount, events.rowcount, logs.rowcount, keys.rowcount)


def count_prunable(
    reader: Engine, finished_before: datetime | None, keys_before: datetime
) -> PruneCounts:
    """See ``RunPruner.count_prunable``."""
    with reader.connect() as connection:
        keys = connection.scalar(
            select(func.count()).where(idempotency_keys.c.created_at < keys_before)
        )
        if finished_before is None:
            return PruneCounts(keys=int(keys or 0))
        old = select(runs.c.run_id).where(_finished_before(finished_before))
        counted = [
            connection.scalar(select(func.count()).select_from(old.subquery())),
            connection.scalar(select(func.count()).where(run_events.c.run_id.in_(old))),
            connection.scalar(select(func.count()).where(run_logs.c.run_id.in_(old))),
            connection.scalar(
                select(func.count()).where(
                    and_(
                        idempotency_keys.c.run_id.in_(old),
                        idempotency_keys.c.created_at >= keys_before,
                    )
                )
            ),
        ]
    runs_, events, logs, keys_of_runs = (int(value or 0) for value in counted)
    return PruneCounts(runs_, events, logs, int(keys or 0) + keys_of_runs)

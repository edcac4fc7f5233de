"""A new run as SQL, inside the caller's transaction: its save version, its rows, its
first event, the writes that come with it and its Idempotency-Key."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from sqlalchemy import Connection, and_, delete

from app.domain.ports import AppendEvent, IdempotencyKey, StoreWrite
from app.domain.runs import EventType, Run, RunStatus
from app.persistence.counters import keep_ahead_of, next_save_version
from app.persistence.rows import run_values
from app.persistence.storable import storable_text
from app.persistence.tables import idempotency_keys, run_pipelines, runs
from app.persistence.writes import append_event, apply_write, record_state_change


def insert_run(
    connection: Connection, run: Run, then: Sequence[StoreWrite], key: IdempotencyKey | None
) -> Run:
    """See ``SqlRunStore.insert_run``; returns the run as stored."""
    # First, as every writer does: the counters' row lock orders this transaction
    # before any run row it takes (and orders save versions by commit).
    if run.save_version == "":
        run = replace(run, save_version=next_save_version(connection, run.queued_at))
    else:
        keep_ahead_of(connection, run.save_version)
    connection.execute(runs.insert().values(run_values(run)))
    connection.execute(
        run_pipelines.insert(),
        [
            {"run_id": run.run_id, "pipeline_name": name}
            for name in dict.fromkeys(map(storable_text, run.spec.pipeline_names))
        ],
    )
    append_event(connection, AppendEvent(run.run_id, EventType.RUN_QUEUED, run.queued_at))
    owner = storable_text(run.owner)  # as the run row has it
    record_state_change(connection, run.run_id, RunStatus.QUEUED, run.queued_at, owner)
    for write in then:
        apply_write(connection, write)
    if key is not None:
        _record_key(connection, run, key)
    return run


def _record_key(connection: Connection, run: Run, key: IdempotencyKey) -> None:
    principal, text = storable_text(key.principal), storable_text(key.key)
    match = and_(idempotency_keys.c.principal == principal, idempotency_keys.c.key == text)
    connection.execute(delete(idempotency_keys).where(match))  # an expired one
    connection.execute(
        idempotency_keys.insert().values(
            principal=principal,
            key=text,
            body_hash=storable_text(key.body_hash),
            run_id=run.run_id,
            created_at=run.queued_at,
        )
    )

"""A new run as SQL, inside the caller's transaction: its save version, its rows, its
first event, the writes that come with it and its Idempotency-Key."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime

from sqlalchemy import Connection, and_, delete

from app.domain.ports import AppendEvent, IdempotencyKey, StoreWrite
from app.domain.runs import EventType, Run, RunStatus
from app.errors import IdempotencyKeyTaken
from app.persistence.counters import keep_ahead_of, next_save_version
from app.persistence.engine import insert_unless_present
from app.persistence.rows import run_values
from app.persistence.storable import storable_text
from app.persistence.tables import idempotency_keys, run_pipelines, runs
from app.persistence.writes import append_events, apply_write, record_state_change


def insert_run(
    connection: Connection,
    run: Run,
    then: Sequence[StoreWrite],
    key: IdempotencyKey | None,
    key_live_since: datetime | None,
) -> Run:
    """See ``SqlRunStore.insert_run``; returns the run as stored."""
    # First, as every writer does: the counters' row lock orders this transaction
    # before any run row it takes (and orders save versions by commit).
    if run.save_version == "":
        run = replace(run, save_version=next_save_version(connection, run.queued_at))
    else:
        keep_ahead_of(connection, run.save_version)
    connection.execute(runs.insert().values(run_values(run)))
    if key is not None:
        # Right after the run row, which the key refers to (its foreign key), before any
        # other row: a loser does no more work than that before it rolls back.
        _claim_key(connection, run, key, key_live_since)
    connection.execute(
        run_pipelines.insert(),
        [
            {"run_id": run.run_id, "pipeline_name": name}
            for name in dict.fromkeys(map(storable_text, run.spec.pipeline_names))
        ],
    )
    append_events(connection, [AppendEvent(run.run_id, EventType.RUN_QUEUED, run.queued_at)])
    owner = storable_text(run.owner)  # as the run row has it
    record_state_change(connection, run.run_id, RunStatus.QUEUED, run.queued_at, owner)
    for write in then:
        apply_write(connection, write)
    return run


def _claim_key(
    connection: Connection, run: Run, key: IdempotencyKey, live_since: datetime | None
) -> None:
    """Record ``key`` for ``run``, replacing a record of it made before ``live_since``
    (expired). Raises IdempotencyKeyTaken if a live record is there, or one another
    transaction is writing commits first: the database's unique key decides, not a
    read made earlier, so two processes with one key never both store a run."""
    values = {
        "principal": storable_text(key.principal),
        "key": storable_text(key.key),
        "body_hash": storable_text(key.body_hash),
        "run_id": run.run_id,
        "created_at": run.queued_at,
    }
    unique = ["principal", "key"]
    if insert_unless_present(connection, idempotency_keys, values, unique):
        return
    if live_since is not None:
        expired = connection.execute(
            delete(idempotency_keys).where(
                and_(
                    idempotency_keys.c.principal == values["principal"],
                    idempotency_keys.c.key == values["key"],
                    idempotency_keys.c.created_at < live_since,
                )
            )
        )
        # Deleted under this transaction's lock: no one else can claim it meanwhile.
        if expired.rowcount == 1 and insert_unless_present(
            connection, idempotency_keys, values, unique
        ):
            return
    raise IdempotencyKeyTaken("Another request with this Idempotency-Key stored its run first.")

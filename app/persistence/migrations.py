"""Schema migrations: an ordered list of steps, each applied once, recorded in
``schema_version``. Add a step to change the schema; never edit an applied one."""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import Connection, Engine, inspect, select

from app.domain.runs import utcnow
from app.persistence.tables import (
    idempotency_keys,
    metadata,
    run_events,
    run_logs,
    run_pipelines,
    runs,
    schema_version,
)


def _initial_schema(connection: Connection) -> None:
    metadata.create_all(connection, tables=[runs, run_pipelines, run_events])


def _run_logs(connection: Connection) -> None:
    metadata.create_all(connection, tables=[run_logs])
    # A store created by step 1 of this code already has the column (tables.py is
    # the current schema); one created by an older step 1 does not.
    columns = {column["name"] for column in inspect(connection).get_columns("runs")}
    if "logs_dropped" not in columns:
        connection.exec_driver_sql(
            "ALTER TABLE runs ADD COLUMN logs_dropped INTEGER NOT NULL DEFAULT 0"
        )


def _run_outputs(connection: Connection) -> None:
    columns = {column["name"] for column in inspect(connection).get_columns("runs")}
    if "outputs" not in columns:
        connection.exec_driver_sql("ALTER TABLE runs ADD COLUMN outputs TEXT")


def _idempotency_keys(connection: Connection) -> None:
    metadata.create_all(connection, tables=[idempotency_keys])


def _run_owner(connection: Connection) -> None:
    columns = {column["name"] for column in inspect(connection).get_columns("runs")}
    if "owner" not in columns:
        connection.exec_driver_sql(
            "ALTER TABLE runs ADD COLUMN owner VARCHAR(64) NOT NULL DEFAULT 'anonymous'"
        )
    indexes = {index["name"] for index in inspect(connection).get_indexes("runs")}
    if "ix_runs_owner_save_version" not in indexes:
        connection.exec_driver_sql(
            "CREATE INDEX ix_runs_owner_save_version ON runs (owner, save_version)"
        )


def _run_attempts(connection: Connection) -> None:
    # Independent of step 5 (another change); checks the columns itself, so it applies
    # to stores at any earlier step and to ones created from the current tables.py.
    columns = {column["name"] for column in inspect(connection).get_columns("runs")}
    if "attempts" not in columns:
        connection.exec_driver_sql(
            "ALTER TABLE runs ADD COLUMN attempts INTEGER NOT NULL DEFAULT 0"
        )
        # Runs that started before this step had one attempt.
        connection.exec_driver_sql("UPDATE runs SET attempts = 1 WHERE started_at IS NOT NULL")
    if "attempt_save_version" not in columns:
        connection.exec_driver_sql("ALTER TABLE runs ADD COLUMN attempt_save_version VARCHAR(32)")


_RETENTION_INDEXES = {
    "runs": {"ix_runs_finished_at": "finished_at"},
    "idempotency_keys": {
        "ix_idempotency_keys_created_at": "created_at",
        "ix_idempotency_keys_run_id": "run_id",
    },
}


def _retention_indexes(connection: Connection) -> None:
    # The prune finds finished runs by finished_at and expired keys by created_at.
    for table, wanted in _RETENTION_INDEXES.items():
        present = {index["name"] for index in inspect(connection).get_indexes(table)}
        for name, column in wanted.items():
            if name not in present:
                connection.exec_driver_sql(f"CREATE INDEX {name} ON {table} ({column})")


def _acknowledged_attempts(connection: Connection) -> None:
    columns = {column["name"] for column in inspect(connection).get_columns("runs")}
    if "acknowledged_attempts" not in columns:
        connection.exec_driver_sql(
            "ALTER TABLE runs ADD COLUMN acknowledged_attempts INTEGER NOT NULL DEFAULT 0"
        )
        # Before this step every claimed attempt may have reached a worker.
        connection.exec_driver_sql("UPDATE runs SET acknowledged_attempts = attempts")


MIGRATIONS: list[tuple[int, Callable[[Connection], None]]] = [
    (1, _initial_schema),
    (2, _run_logs),
    (3, _run_outputs),
    (4, _idempotency_keys),
    (5, _run_owner),
    (6, _run_attempts),
    (7, _retention_indexes),
    (8, _acknowledged_attempts),
]


def migrate(engine: Engine) -> int:
    """Bring the schema up to date; returns the version it is at."""
    with engine.begin() as connection:
        if not inspect(connection).has_table(schema_version.name):
            schema_version.create(connection)
        applied = set(connection.scalars(select(schema_version.c.version)))
        for version, step in MIGRATIONS:
            if version in applied:
                continue
            step(connection)
            connection.execute(schema_version.insert().values(version=version, applied_at=utcnow()))
        return max(version for version, _ in MIGRATIONS)

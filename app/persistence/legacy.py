"""Stores made before Alembic: the hand-rolled migration steps 2 to 8, frozen as they
shipped, so a store at any of those versions reaches step 8, which is Alembic's baseline
revision (``alembic/versions/r0001_baseline.py``), and is then stamped there.

Such a store has a ``schema_version`` table with one row per step applied and no
``alembic_version`` table. Step 1 made ``runs``, ``run_pipelines`` and ``run_events`` in
the same transaction that made ``schema_version``, so every such store has it. Each
later step checks what is there before it changes anything (a step 1 of a later release
made columns of later steps already), as it always did.
"""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import (
    Column,
    Connection,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    inspect,
    text,
)

from app.domain.runs import utcnow
from app.errors import StartupRefused

LEGACY_TABLE = "schema_version"
LAST_STEP = 8

# The tables steps 2 and 4 made, as tables.py had them when those steps were last
# released: frozen here, so a change to tables.py never changes what these steps do.
_frozen = MetaData()
_run_logs = Table(
    "run_logs",
    _frozen,
    Column("run_id", String(36), ForeignKey("runs.run_id"), primary_key=True),
    Column("seq", Integer, primary_key=True, autoincrement=False),
    Column("at", String(32), nullable=False),
    Column("level", Integer, nullable=False),
    Column("logger", String(255), nullable=False),
    Column("node", Text),
    Column("message", Text, nullable=False),
)
_idempotency_keys = Table(
    "idempotency_keys",
    _frozen,
    Column("principal", String(255), primary_key=True),
    Column("key", String(255), primary_key=True),
    Column("body_hash", String(64), nullable=False),
    Column("run_id", String(36), ForeignKey("runs.run_id"), nullable=False),
    Column("created_at", String(32), nullable=False),
    Index("ix_idempotency_keys_created_at", "created_at"),
    Index("ix_idempotency_keys_run_id", "run_id"),
)
# Only for the foreign keys above to resolve; never created by these steps.
Table("runs", _frozen, Column("run_id", String(36), primary_key=True))


class UnknownSchema(StartupRefused):
    """The database has a ``schema_version`` this release cannot bring to the baseline."""


def _columns(connection: Connection, table: str) -> set[str]:
    return {column["name"] for column in inspect(connection).get_columns(table)}


def _indexes(connection: Connection, table: str) -> set[str]:
    return {str(index["name"]) for index in inspect(connection).get_indexes(table)}


def _run_logs_step(connection: Connection) -> None:
    _frozen.create_all(connection, tables=[_run_logs])
    if "logs_dropped" not in _columns(connection, "runs"):
        connection.exec_driver_sql(
            "ALTER TABLE runs ADD COLUMN logs_dropped INTEGER NOT NULL DEFAULT 0"
        )


def _run_outputs(connection: Connection) -> None:
    if "outputs" not in _columns(connection, "runs"):
        connection.exec_driver_sql("ALTER TABLE runs ADD COLUMN outputs TEXT")


def _idempotency_keys_step(connection: Connection) -> None:
    _frozen.create_all(connection, tables=[_idempotency_keys])


def _run_owner(connection: Connection) -> None:
    if "owner" not in _columns(connection, "runs"):
        connection.exec_driver_sql(
            "ALTER TABLE runs ADD COLUMN owner VARCHAR(64) NOT NULL DEFAULT 'anonymous'"
        )
    if "ix_runs_owner_save_version" not in _indexes(connection, "runs"):
        connection.exec_driver_sql(
            "CREATE INDEX ix_runs_owner_save_version ON runs (owner, save_version)"
        )


def _run_attempts(connection: Connection) -> None:
    columns = _columns(connection, "runs")
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
    for table, wanted in _RETENTION_INDEXES.items():
        present = _indexes(connection, table)
        for name, column in wanted.items():
            if name not in present:
                connection.exec_driver_sql(f"CREATE INDEX {name} ON {table} ({column})")


def _acknowledged_attempts(connection: Connection) -> None:
    if "acknowledged_attempts" not in _columns(connection, "runs"):
        connection.exec_driver_sql(
            "ALTER TABLE runs ADD COLUMN acknowledged_attempts INTEGER NOT NULL DEFAULT 0"
        )
        # Before this step every claimed attempt may have reached a worker.
        connection.exec_driver_sql("UPDATE runs SET acknowledged_attempts = attempts")


_STEPS: list[tuple[int, Callable[[Connection], None]]] = [
    (2, _run_logs_step),
    (3, _run_outputs),
    (4, _idempotency_keys_step),
    (5, _run_owner),
    (6, _run_attempts),
    (7, _retention_indexes),
    (8, _acknowledged_attempts),
]


def legacy_version(connection: Connection) -> int | None:
    """The last hand-rolled step a pre-Alembic store had applied; None for any other
    database (empty, or already under Alembic)."""
    tables = set(inspect(connection).get_table_names())
    if LEGACY_TABLE not in tables or "alembic_version" in tables:
        return None
    applied = connection.scalar(text(f"SELECT max(version) FROM {LEGACY_TABLE}"))
    return int(applied or 0)


def bring_to_baseline(connection: Connection) -> bool:
    """If the database is a pre-Alembic store, apply the steps it lacks, in the caller's
    transaction, and return True: it is then at the baseline, to be stamped. False for
    any other database. Raises UnknownSchema for a ``schema_version`` past step 8 or
    without step 1."""
    if legacy_version(connection) is None:
        return False
    applied = set(connection.scalars(text(f"SELECT version FROM {LEGACY_TABLE}")))
    if 1 not in applied or max(applied) > LAST_STEP:
        raise UnknownSchema(
            f"the run store's {LEGACY_TABLE} has steps {sorted(applied)}: not a store this "
            "kedro-runs can upgrade"
        )
    for version, step in _STEPS:
        if version not in applied:
            step(connection)
            connection.execute(
                text(f"INSERT INTO {LEGACY_TABLE} (version, applied_at) VALUES (:v, :at)"),
                {"v": version, "at": utcnow().strftime("%Y-%m-%dT%H:%M:%S.%fZ")},
            )
    return True

"""The schema, as SQLAlchemy Core tables. Portable across SQLite and PostgreSQL.

The Alembic revisions (``alembic/versions``) make exactly this: a change here needs a
revision, and a test fails while a migrated store and these tables differ."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    TypeDecorator,
)
from sqlalchemy.engine import Dialect


class UtcTimestamp(TypeDecorator[datetime]):
    """An aware UTC datetime stored as ISO 8601 text, so ordering and precision are the
    same on every dialect."""

    impl = String(32)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> str | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetimes are not stored")
        return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")

    def process_result_value(self, value: str | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return datetime.strptime(value, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)


metadata = MetaData()

runs = Table(
    "runs",
    metadata,
    Column("run_id", String(36), primary_key=True),
    # Unique and increasing in submission order: also the keyset for paging.
    Column("save_version", String(32), nullable=False, unique=True),
    Column("status", String(16), nullable=False),
    Column("spec", Text, nullable=False),  # JSON: the request as accepted
    Column("nodes", Text, nullable=False),  # JSON: node names in execution order
    Column("footprint", Text, nullable=False),  # JSON: files read and written
    Column("env", String(255)),
    Column("kedro_version", String(32), nullable=False),
    Column("project_commit", String(64)),
    Column("queued_at", UtcTimestamp, nullable=False),
    Column("started_at", UtcTimestamp),
    Column("finished_at", UtcTimestamp),
    Column("cancel_requested_at", UtcTimestamp),
    Column("failure_reason", String(32)),
    Column("error_type", String(255)),
    Column("error_message", Text),
    # Log records of the run dropped over its cap (migration 2).
    Column("logs_dropped", Integer, nullable=False, server_default="0"),
    # JSON: datasets the run saved and its free outputs (migration 3).
    Column("outputs", Text),
    # The caller (API key name) that created the run (migration 5).
    Column("owner", String(64), nullable=False, server_default="anonymous"),
    # Times handed to a worker, and the save version of the latest retry (migration 6).
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("attempt_save_version", String(32)),
    # Attempts a worker acknowledged taking (migration 7): a claimed attempt beyond
    # them never reached a worker, so no node of it ran.
    Column("acknowledged_attempts", Integer, nullable=False, server_default="0"),
    # The last event seq handed out (revision 0003): each event takes the next one
    # under the run row's lock, so every writer process numbers the run's events alike.
    Column("last_event_seq", Integer, nullable=False, server_default="0"),
    # Cluster mode: the replica whose lease the run's current attempt runs under (0006).
    Column("claimed_by", String(32)),
    Index("ix_runs_status_save_version", "status", "save_version"),
    Index("ix_runs_owner_save_version", "owner", "save_version"),
    Index("ix_runs_finished_at", "finished_at"),  # the prune's cutoff (migration 7)
)

run_pipelines = Table(
    "run_pipelines",
    metadata,
    Column("run_id", String(36), ForeignKey("runs.run_id"), primary_key=True),
    Column("pipeline_name", String(255), primary_key=True),
    Index("ix_run_pipelines_name", "pipeline_name", "run_id"),
)

run_events = Table(
    "run_events",
    metadata,
    Column("run_id", String(36), ForeignKey("runs.run_id"), primary_key=True),
    Column("seq", Integer, primary_key=True, autoincrement=False),
    Column("type", String(32), nullable=False),
    Column("at", UtcTimestamp, nullable=False),
    Column("node", Text),
    Column("data", Text, nullable=False),  # JSON
)

# Added by migration 2, with runs.logs_dropped.
run_logs = Table(
    "run_logs",
    metadata,
    Column("run_id", String(36), ForeignKey("runs.run_id"), primary_key=True),
    Column("seq", Integer, primary_key=True, autoincrement=False),
    Column("at", UtcTimestamp, nullable=False),
    Column("level", Integer, nullable=False),
    Column("logger", String(255), nullable=False),
    Column("node", Text),
    Column("message", Text, nullable=False),
)

# Added by migration 4: Idempotency-Key of a submission, scoped per caller.
idempotency_keys = Table(
    "idempotency_keys",
    metadata,
    Column("principal", String(255), primary_key=True),
    Column("key", String(255), primary_key=True),
    Column("body_hash", String(64), nullable=False),
    Column("run_id", String(36), ForeignKey("runs.run_id"), nullable=False),
    Column("created_at", UtcTimestamp, nullable=False),
    # For the prune (migration 7): keys past their TTL, and the keys of a pruned run.
    Index("ix_idempotency_keys_created_at", "created_at"),
    Index("ix_idempotency_keys_run_id", "run_id"),
)

# The service's counters (revision 0004): one row (id 1), taken under its lock in the
# transaction that uses it. ``last_ms``: the newest save version issued, in ms since
# the epoch; ``last_change_id``: the newest state change's id (revision 0005).
service_clock = Table(
    "service_clock",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("last_ms", BigInteger, nullable=False),
    Column("last_change_id", BigInteger, nullable=False, server_default="0"),
)

# Every change of a run's status, numbered across the service (revision 0005).
state_changes = Table(
    "state_changes",
    metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=False),
    Column("run_id", String(36), ForeignKey("runs.run_id"), nullable=False),
    Column("status", String(16), nullable=False),
    Column("at", UtcTimestamp, nullable=False),
    Column("owner", String(64), nullable=False),
    Index("ix_state_changes_owner_id", "owner", "id"),  # one caller's feed
    Index("ix_state_changes_run_id", "run_id"),  # the prune
)

# Cluster mode (revision 0006): the replicas serving one database, and their leases,
# on the database's clock.
instances = Table(
    "instances",
    metadata,
    Column("instance_id", String(32), primary_key=True),
    Column("joined_at", DateTime(timezone=True), nullable=False),
    Column("heartbeat_at", DateTime(timezone=True), nullable=False),
    Column("ready_workers", Integer, nullable=False, server_default="0"),
    Column("busy", Integer, nullable=False, server_default="0"),
)

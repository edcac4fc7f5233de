"""Schema migrations: Alembic revisions (``app/persistence/alembic/versions``), run on
SQLite and PostgreSQL alike, by every store at start-up and by ``kedro-runs db upgrade``.

A store made before Alembic (``app.persistence.legacy``) is brought to the baseline by
the steps it lacks of the hand-rolled migrations, stamped at the baseline, and then
upgraded like any other. On PostgreSQL the whole upgrade runs under a session advisory
lock, so replicas starting together on one database migrate it once, one after the
other; SQLite stores have one owner process (``ownership``), and its write
transaction (BEGIN IMMEDIATE) serialises the rest.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, func, select

from app.persistence.engine import advisory_key
from app.persistence.legacy import bring_to_baseline, legacy_version

BASELINE = "0001"
SCRIPT_LOCATION = Path(__file__).parent / "alembic"


MIGRATION_LOCK = advisory_key("migrate")


def alembic_config(connection: Connection) -> Config:
    """Alembic's configuration for this package's revisions, run on ``connection``."""
    config = Config()
    # ConfigParser interpolates '%': a path holding one must not be read as a reference.
    config.set_main_option("script_location", str(SCRIPT_LOCATION).replace("%", "%%"))
    config.set_main_option("path_separator", "os")
    config.attributes["connection"] = connection
    return config


def head_revision() -> str:
    head = ScriptDirectory(str(SCRIPT_LOCATION)).get_current_head()
    assert head is not None, "the package ships its revisions"
    return head


@contextlib.contextmanager
def migration_lock(engine: Engine) -> Iterator[None]:
    """Hold the migration lock for the block: on PostgreSQL a session advisory lock on a
    connection of its own (waiting for whoever holds it); nothing elsewhere."""
    if engine.dialect.name != "postgresql":
        yield
        return
    with engine.connect() as holder:
        holder.execute(select(func.pg_advisory_lock(MIGRATION_LOCK)))
        holder.commit()  # the lock is the session's: it outlives this transaction
        try:
            yield
        finally:
            holder.execute(select(func.pg_advisory_unlock(MIGRATION_LOCK)))
            holder.commit()


def upgrade(engine: Engine) -> str:
    """Bring the store's schema to the newest revision, in one transaction, under the
    migration lock; returns that revision. Raises ``legacy.UnknownSchema`` for a
    pre-Alembic store this release cannot take."""
    with migration_lock(engine), engine.begin() as connection:
        config = alembic_config(connection)
        if bring_to_baseline(connection):
            command.stamp(config, BASELINE)
        command.upgrade(config, "head")
    return head_revision()


@dataclass(frozen=True)
class SchemaState:
    """Where a store's schema is: its Alembic ``revision`` (None when it has none), the
    ``legacy`` step of a store made before Alembic (else None), and this release's head."""

    revision: str | None
    legacy: int | None
    head: str

    @property
    def up_to_date(self) -> bool:
        return self.revision == self.head

    def describe(self) -> str:
        if self.legacy is not None:
            return (
                f"made before Alembic (schema_version {self.legacy}); "
                f"`kedro-runs db upgrade` brings it to {self.head}"
            )
        if self.revision is None:
            return f"empty (no schema); `kedro-runs db upgrade` makes revision {self.head}"
        if self.up_to_date:
            return f"at revision {self.revision} (head)"
        return f"at revision {self.revision}; head is {self.head}: run `kedro-runs db upgrade`"


def schema_state(engine: Engine) -> SchemaState:
    """Where the store's schema is; changes nothing."""
    with engine.connect() as connection:
        revision = MigrationContext.configure(connection).get_current_revision()
        return SchemaState(revision, legacy_version(connection), head_revision())

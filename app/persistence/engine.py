"""Engine set-up and the SQL that differs by dialect (with ``ownership`` and
``migrations``, which hold PostgreSQL's advisory locks: nothing else knows the dialect)."""

from __future__ import annotations

import errno
import hashlib
import os
import sqlite3
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from sqlalchemy import Connection, Engine, Table, create_engine, event
from sqlalchemy.dialects import postgresql as postgresql_dialect
from sqlalchemy.dialects import sqlite as sqlite_dialect
from sqlalchemy.engine import make_url

IDLE_IN_TRANSACTION_MS = 15_000


def open_engine(url: str, *, writer: bool) -> Engine:
    """An engine for ``url``. SQLite files get WAL, a busy timeout and foreign keys;
    their directory is created. A ``writer`` engine takes SQLite's write lock when a
    transaction begins; readers never do, so in WAL mode they never wait for writers."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        # A transaction left open (its process paused, say, holding the counters' row
        # lock every writer takes) is ended by the server rather than blocking every
        # writer of every replica until that process wakes.
        idle = f"-c idle_in_transaction_session_timeout={IDLE_IN_TRANSACTION_MS}"
        return create_engine(url, pool_pre_ping=True, connect_args={"options": idle})
    database = sqlite_file(url)
    if database is not None:
        database.parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False})

    @event.listens_for(engine, "connect")
    def _configure_sqlite(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy issue BEGIN itself, so a transaction starts where we say.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        # NORMAL in WAL mode: a committed run survives a crash of this process;
        # only a power cut can lose the last transactions.
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _begin(connection: Any) -> None:
        # A writer takes the write lock at BEGIN, so two writers queue instead of
        # failing with "database is locked" when one upgrades its read lock.
        connection.exec_driver_sql("BEGIN IMMEDIATE" if writer else "BEGIN")

    return engine


_PG_DISK_FULL = "53100"  # SQLSTATE disk_full


def is_storage_full(error: BaseException) -> bool:
    """Whether ``error`` (as raised by SQLAlchemy, or below it) means the disk is full:
    SQLITE_FULL, PostgreSQL's disk_full, or ENOSPC from the file system."""
    seen: BaseException | None = error
    while seen is not None:
        if isinstance(seen, OSError) and seen.errno == errno.ENOSPC:
            return True
        if isinstance(seen, sqlite3.Error) and (
            getattr(seen, "sqlite_errorcode", None) == sqlite3.SQLITE_FULL
            or "database or disk is full" in str(seen)
        ):
            return True
        # psycopg 3 names the SQLSTATE ``sqlstate``; psycopg2 named it ``pgcode``.
        if _PG_DISK_FULL in (getattr(seen, "sqlstate", None), getattr(seen, "pgcode", None)):
            return True
        seen = getattr(seen, "orig", None) or seen.__cause__
    return False


def insert_unless_present(
    connection: Connection, table: Table, values: dict[str, Any], unique: list[str]
) -> bool:
    """``INSERT ... ON CONFLICT (unique) DO NOTHING``; whether the row went in. On
    PostgreSQL it waits for a transaction that inserted the same key to end, and then
    does nothing if that one committed."""
    dialect = connection.dialect.name
    if dialect == "postgresql":
        statement: Any = postgresql_dialect.insert(table)
    elif dialect == "sqlite":
        statement = sqlite_dialect.insert(table)
    else:
        raise NotImplementedError(f"the run store does not support {dialect}")
    # RETURNING, not rowcount: psycopg reports no row count for this statement.
    inserted = connection.execute(
        statement.values(values)
        .on_conflict_do_nothing(index_elements=unique)
        .returning(table.c[unique[0]])
    )
    return inserted.first() is not None


def takes_row_locks(connection: Connection) -> bool:
    """Whether writers lock rows (``SELECT ... FOR UPDATE``) on this connection's database.
    Not on SQLite: its one writer at a time holds the whole database."""
    return connection.dialect.name != "sqlite"


def is_sqlite(engine: Engine) -> bool:
    return engine.dialect.name == "sqlite"


def sqlite_file(url: str) -> Path | None:
    """The file a SQLite URL names, absolute with symlinks resolved (``sqlite:///x.db``,
    or the URI form ``sqlite:///file:x.db?uri=true``); None for another database or an
    in-memory one."""
    parsed = make_url(url)
    database = parsed.database
    if parsed.get_backend_name() != "sqlite" or not database or database == ":memory:":
        return None
    if database.startswith("file:"):  # SQLite's URI filenames
        uri = urlsplit(database)
        if uri.path in {"", ":memory:"} or "mode=memory" in uri.query:
            return None
        database = unquote(uri.path)
    return Path(os.path.realpath(database))


def advisory_key(purpose: str) -> int:
    """The PostgreSQL advisory lock key for ``purpose``: a signed 64-bit number derived
    from ``kedro-runs:<purpose>``, so every process and release agrees on it. Advisory
    locks are per database, so stores in other databases never meet it."""
    digest = hashlib.sha256(f"kedro-runs:{purpose}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)

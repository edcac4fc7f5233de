"""Who may open a store: one service alone (embedded mode), or any number of cluster
replicas together (shared mode), never both.

A service in embedded mode numbers, dispatches and recovers from its own memory, so a
second process on its store does real harm (it fails the first one's running runs at
start-up, among other things). SQLite: an exclusive ``flock`` on the database file.
PostgreSQL: an advisory lock on the owner key, held by a connection of its own for as
long as the store is open, exclusive for embedded mode and shared for cluster mode. A
lock held by a connection ends with it: a crashed owner frees its store at once.
"""

from __future__ import annotations

import fcntl
from collections.abc import Callable
from typing import IO

from sqlalchemy import Connection, create_engine, func, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

from app.errors import StartupRefused
from app.persistence.engine import advisory_key, sqlite_file

OWNER_LOCK = advisory_key("owner")


class StoreInUse(StartupRefused):
    """Another kedro-runs process already owns this store (or, in the other mode, shares it)."""


def take_ownership(url: str, *, shared: bool) -> Callable[[], None] | None:
    """Own the store at ``url`` (with ``shared``, share it with other replicas); returns
    what gives it up (call it only after every other connection to the store is closed),
    or None for a database without owners here (neither SQLite nor PostgreSQL).

    Raises StoreInUse when it is taken, and StartupRefused for ``shared`` on SQLite
    (a SQLite store has one owner: cluster mode needs PostgreSQL).
    """
    backend = make_url(url).get_backend_name()
    if backend == "sqlite":
        if shared:
            raise StartupRefused(
                "a SQLite store has one owner: shared (cluster) mode needs PostgreSQL"
            )
        handle = lock_sqlite_store(url)
        return None if handle is None else handle.close
    if backend == "postgresql":
        return _hold_postgres_store(url, shared=shared)
    return None


def lock_sqlite_store(url: str) -> IO[bytes] | None:
    """Take an exclusive lock on a SQLite store file, so a second service cannot share
    it (one process dispatches and recovers its runs from memory). Returns the open file (keep it
    open to keep the lock; close it only after every connection to the store is
    closed), or None for other databases.

    The lock is ``flock`` on the database file itself, so every name of that file (a
    symlink, a relative path, a ``file:`` URI, a hard link) meets the same lock. SQLite's
    own locks are POSIX record locks, which ``flock`` does not touch on Linux. The file
    is created empty when missing, which SQLite takes as a new database.

    Raises StoreInUse if the lock is held.
    """
    path = sqlite_file(url)
    if path is None:
        return None
    path.parent.mkdir(parents=True, exist_ok=True)
    handle = path.open("ab")  # never truncates; nothing is written through it
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError as error:
        handle.close()
        raise StoreInUse(
            f"{path} is in use by another kedro-runs process; stop it or pass another "
            "--state-dir / --database"
        ) from error
    return handle


def _hold_postgres_store(url: str, *, shared: bool) -> Callable[[], None]:
    # Its own engine without a pool: the holding connection is never lent to a query,
    # recycled or reset, and closing it ends the session, which frees the lock.
    engine = create_engine(url, poolclass=NullPool)
    try:
        holder = engine.connect()
    except BaseException:
        engine.dispose()
        raise
    try:
        attempt = func.pg_try_advisory_lock_shared if shared else func.pg_try_advisory_lock
        taken = bool(holder.scalar(select(attempt(OWNER_LOCK))))
        holder.commit()  # a session lock: it outlives this transaction
        if not taken:
            raise StoreInUse(_refusal(holder, url, shared=shared))
    except BaseException:
        holder.close()
        engine.dispose()
        raise

    def give_up() -> None:
        # Unlocked before the connection closes: the server ends a closed session a
        # moment later, and a new owner must not find the lock still held then.
        release = func.pg_advisory_unlock_shared if shared else func.pg_advisory_unlock
        try:
            holder.execute(select(release(OWNER_LOCK)))
            holder.commit()
        finally:
            holder.close()
            engine.dispose()

    return give_up


def _refusal(holder: Connection, url: str, *, shared: bool) -> str:
    """Why the owner lock could not be taken, in the words of the SQLite refusal."""
    where = make_url(url).render_as_string(hide_password=True)
    modes = set(
        holder.scalars(
            text(
                "SELECT mode FROM pg_locks WHERE locktype = 'advisory' AND granted"
                " AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
                " AND classid = :high AND objid = :low AND objsubid = 1"
            ),
            {"high": (OWNER_LOCK >> 32) & 0xFFFFFFFF, "low": OWNER_LOCK & 0xFFFFFFFF},
        )
    )
    holder.rollback()
    if shared:
        detail = " (a service in embedded mode owns it; cluster replicas cannot share it)"
    elif "ShareLock" in modes:
        detail = " (cluster replicas share it; a service in embedded mode needs its own)"
    else:
        detail = ""
    return (
        f"{where} is in use by another kedro-runs process{detail}; stop it or pass "
        "another --database"
    )

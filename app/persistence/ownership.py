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

import contextlib
import fcntl
import logging
import os
import signal
import threading
from collections.abc import Callable
from typing import IO

from sqlalchemy import Connection, create_engine, func, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

from app.errors import StartupRefused
from app.persistence.engine import advisory_key, sqlite_file

OWNER_LOCK = advisory_key("owner")
WATCH_SECONDS = 2.0  # how often the owner lock's connection is checked

logger = logging.getLogger("kedro_runs.store")


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
    holder = _LockHolder(url, shared=shared)
    holder.take()
    holder.watch()
    return holder.give_up


class _LockHolder:
    """The owner lock on a connection of its own, watched: a session the server ended
    (a restart, a failover, a proxy cutting idle connections, ``pg_terminate_backend``)
    takes the lock with it, and a second service could then start beside this one. The
    watch notices within ``WATCH_SECONDS``, takes the lock again on a new connection, and
    if another service has it by then, stops this one (SIGTERM to itself): two owners
    would fail each other's runs and break the conflict rule."""

    def __init__(self, url: str, *, shared: bool) -> None:
        self._url = url
        self._shared = shared
        # Its own engine without a pool: the holding connection is never lent to a
        # query, recycled or reset, and closing it ends the session, which frees the lock.
        self._engine = create_engine(url, poolclass=NullPool)
        self._connection: Connection | None = None
        self._guard = threading.Lock()
        self._closed = threading.Event()

    def take(self) -> None:
        """Take the lock on a new connection. Raises StoreInUse if another owner has it."""
        connection = self._engine.connect()
        try:
            attempt = (
                func.pg_try_advisory_lock_shared if self._shared else func.pg_try_advisory_lock
            )
            taken = bool(connection.scalar(select(attempt(OWNER_LOCK))))
            connection.commit()  # a session lock: it outlives this transaction
            if not taken:
                raise StoreInUse(_refusal(connection, self._url, shared=self._shared))
        except BaseException:
            connection.close()
            if self._connection is None:
                self._engine.dispose()
            raise
        self._connection = connection

    def watch(self) -> None:
        threading.Thread(target=self._watch, name="store-owner-watch", daemon=True).start()

    def _watch(self) -> None:
        while not self._closed.wait(WATCH_SECONDS):
            with self._guard:
                if self._closed.is_set() or self._still_held():
                    continue
                try:
                    self.take()
                except StoreInUse as error:
                    logger.critical(
                        "the store's owner lock was lost and taken: %s; stopping", error
                    )
                    os.kill(os.getpid(), signal.SIGTERM)
                    return
                except Exception as error:  # the database is away: try again soon
                    logger.warning("the store's owner lock was lost (%s); retrying", error)
                    continue
                logger.warning("the store's owner lock was lost with its connection; taken again")

    def _still_held(self) -> bool:
        connection = self._connection
        if connection is None:
            return False
        try:
            connection.scalar(select(1))
            connection.commit()
            return True
        except Exception:
            with contextlib.suppress(Exception):
                connection.close()
            self._connection = None
            return False

    def give_up(self) -> None:
        """Unlock before the connection closes: the server ends a closed session a moment
        later, and a new owner must not find the lock still held then."""
        self._closed.set()
        with self._guard:
            connection, self._connection = self._connection, None
            release = func.pg_advisory_unlock_shared if self._shared else func.pg_advisory_unlock
            try:
                if connection is not None:
                    with contextlib.suppress(Exception):  # a dead session holds nothing
                        connection.execute(select(release(OWNER_LOCK)))
                        connection.commit()
            finally:
                if connection is not None:
                    connection.close()
                self._engine.dispose()


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

"""Notices between replicas over PostgreSQL LISTEN/NOTIFY.

The store sends a notice inside the transaction that records a fact
(``pg_notify(CHANNEL, …)``), so PostgreSQL delivers it at commit and only if the fact
committed. ``PgChangeListener`` holds one dedicated connection per process (a direct one:
PgBouncer's transaction mode cannot LISTEN) and hands each notice to the event loop. A
notice lost while the connection was down is made good by the readers' bounded
re-checks; after a reconnect every waiter is told to re-read (notice ``*``).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

import psycopg
from sqlalchemy.engine import make_url

logger = logging.getLogger("kedro_runs.store")

CHANNEL = "kedro_runs"
RECONNECT_SECONDS = (0.2, 0.5, 1.0, 2.0, 5.0)


def libpq_url(url: str) -> str:
    """A SQLAlchemy ``postgresql+psycopg://`` URL as psycopg itself takes it."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


class PgChangeListener:
    """``start(deliver)``: ``deliver(payload)`` is called on the listener's own thread for
    each notice on ``CHANNEL``, and with ``"*"`` after the connection was lost and is
    back. ``start`` waits (up to 10 s) until it listens; ``start`` and ``stop`` block."""

    def __init__(self, url: str) -> None:
        self._url = libpq_url(url)
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._connected = threading.Event()

    def start(self, deliver: Callable[[str], None]) -> None:
        self._thread = threading.Thread(
            target=self._listen, args=(deliver,), name="pg-listener", daemon=True
        )
        self._thread.start()
        self._connected.wait(10)  # notices sent after start are heard (when it could connect)

    def stop(self) -> None:
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(5)

    def _listen(self, hand_over: Callable[[str], None]) -> None:
        failures = 0
        while not self._stopping.is_set():
            try:
                with psycopg.connect(self._url, autocommit=True, connect_timeout=5) as conn:
                    conn.execute(f"LISTEN {CHANNEL}")
                    if failures:
                        logger.warning("listening for notices again")
                        hand_over("*")
                    failures = 0
                    self._connected.set()
                    while not self._stopping.is_set():
                        for notice in conn.notifies(timeout=0.5):
                            hand_over(notice.payload)
            except Exception as error:  # anything: the thread must not end while wanted
                self._connected.set()  # start() waits no longer: readers re-check anyway
                delay = RECONNECT_SECONDS[min(failures, len(RECONNECT_SECONDS) - 1)]
                if failures == 0:
                    logger.warning("lost the notice connection (%s); reconnecting", error)
                failures += 1
                self._stopping.wait(delay)

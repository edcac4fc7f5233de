"""Waking readers when something was recorded: a per-key "changed" signal, long polls'
waits for a run's end, and what a state change in the store's feed looks like.
Event-loop only, not thread-safe.

Readers pull from the store at their own pace and only wait here, so a slow or
stalled reader never holds up the service, the workers or other readers.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime


class ChangeSignal:
    """``notify(key)`` wakes every ``wait(key)`` pending at that moment."""

    def __init__(self) -> None:
        self._events: dict[str, asyncio.Event] = {}
        self._waiting: dict[str, int] = {}

    def notify(self, key: str) -> None:
        event = self._events.pop(key, None)
        if event is not None:
            event.set()

    def notify_all(self) -> None:
        for key in list(self._events):
            self.notify(key)

    async def wait(self, key: str, seconds: float) -> bool:
        """True if ``key`` changed within ``seconds``."""
        event = self._events.setdefault(key, asyncio.Event())
        self._waiting[key] = self._waiting.get(key, 0) + 1
        try:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(event.wait(), seconds)
                return True
            return False
        finally:
            self._waiting[key] -= 1
            if not self._waiting[key]:
                del self._waiting[key]
                if self._events.get(key) is event:
                    del self._events[key]  # nobody waits on it any more


class FinishWaiters:
    """Long polls waiting for runs to end: ``wake(run_id)`` releases those on the run."""

    def __init__(self) -> None:
        self._waiters: dict[str, list[asyncio.Future[None]]] = {}

    @contextlib.contextmanager
    def registered(self, run_id: str) -> Iterator[asyncio.Future[None]]:
        """A future that ``wake`` resolves, registered for the block."""
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.setdefault(run_id, []).append(waiter)
        try:
            yield waiter
        finally:
            waiters = self._waiters.get(run_id, [])
            if waiter in waiters:
                waiters.remove(waiter)
            if not waiters:
                self._waiters.pop(run_id, None)

    def wake(self, run_id: str | None = None) -> None:
        """Release long polls on ``run_id`` (it ended), or all of them (shutdown)."""
        run_ids = [run_id] if run_id is not None else list(self._waiters)
        for key in run_ids:
            for waiter in self._waiters.get(key, []):
                if not waiter.done():
                    waiter.set_result(None)


@dataclass(frozen=True)
class StateChange:
    """A run changed state. ``id`` orders all changes, for good and across every
    process (the store allocates it)."""

    id: int
    run_id: str
    status: str
    at: datetime
    owner: str = "anonymous"

"""Serving the app with uvicorn, and stopping it the way a job service must.

uvicorn, on SIGTERM, stops accepting connections at once and then runs the app's
shutdown. Clients sent here while the service stops (a load balancer has not yet taken
it out) would then see refused connections. Instead, on the first SIGTERM the service
goes on listening while its runs drain: ``/readyz`` and new submissions answer 503 with
``Retry-After``, reads and cancels still work, and once no run is running (or the drain
budget is spent) uvicorn stops as usual. A second SIGTERM, or SIGINT, stops it at once;
the app's shutdown then interrupts what is still running.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Awaitable, Callable
from types import FrameType

import uvicorn

logger = logging.getLogger("kedro_runs")


class DrainingServer(uvicorn.Server):
    """A uvicorn server whose first SIGTERM drains (``drain()``) before it exits."""

    def __init__(self, config: uvicorn.Config, drain: Callable[[], Awaitable[None]]) -> None:
        super().__init__(config)
        self._drain = drain
        self.draining = False
        self._drain_task: asyncio.Task[None] | None = None

    @property
    def stopping(self) -> bool:
        """Whether the service has begun to stop: draining, or exiting."""
        return self.draining or self.should_exit

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        if sig != signal.SIGTERM or self.draining or self.should_exit:
            super().handle_exit(sig, frame)
            return
        self._captured_signals.append(sig)
        self.draining = True
        loop = None
        with contextlib.suppress(RuntimeError):
            loop = asyncio.get_running_loop()  # a signal handler runs on the loop's thread
        if loop is None:
            self.should_exit = True
            return
        loop.call_soon_threadsafe(self._begin_drain)

    def _begin_drain(self) -> None:
        logger.info("SIGTERM: draining (no new runs; running ones may finish)")
        self._drain_task = asyncio.get_running_loop().create_task(self._drain_then_exit())

    async def _drain_then_exit(self) -> None:
        try:
            await self._drain()
        except Exception:
            logger.exception("drain failed; stopping now")
        self.should_exit = True

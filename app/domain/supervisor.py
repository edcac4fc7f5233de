"""The supervisor loop: applies worker reports in the order they arrived, then
dispatches, all under the service's lock; retries a batch whose write failed."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from app.domain import reports
from app.errors import StorageFull

logger = logging.getLogger("kedro_runs.service")

STOP = reports.CapacityChanged()  # marks the end of the supervisor's inbox at shutdown


async def supervise(
    inbox: asyncio.Queue[reports.Report],
    lock: asyncio.Lock,
    apply_reports: Callable[[list[reports.Report]], Awaitable[None]],
    dispatch: Callable[[], Awaitable[None]],
) -> None:
    """Apply worker reports in order, then dispatch. A batch whose write failed is
    retried as it is (the transaction rolled back), so no report is ever dropped.
    Ends after the ``STOP`` marker, once everything before it is applied."""
    unapplied: list[reports.Report] = []
    stop = False
    disk_full = False  # logged once per episode, not on every retry
    while not stop or unapplied:
        if not unapplied:
            unapplied.append(await inbox.get())
        while not inbox.empty():
            unapplied.append(inbox.get_nowait())
        stop = stop or any(report is STOP for report in unapplied)
        try:
            async with lock:
                await apply_reports([r for r in unapplied if r is not STOP])
                unapplied = []
                if not stop:
                    await dispatch()
            if disk_full:
                logger.warning("the run store can write again")
            disk_full = False
            continue
        except StorageFull:
            if not disk_full:
                logger.warning("the run store's disk is full; retrying until it is not")
            disk_full = True
        except Exception:
            logger.exception("failed to record worker reports or dispatch; retrying")
        await asyncio.sleep(0.5)
        if not unapplied and not stop:  # the dispatch failed: try it again
            inbox.put_nowait(reports.CapacityChanged())

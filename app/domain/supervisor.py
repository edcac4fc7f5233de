"""The supervisor loop: applies worker reports in the order they arrived, then
dispatches, all under the service's lock; retries a batch whose write failed, and
sets apart the run whose reports cannot be written at all."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from app.domain import reports
from app.errors import ServiceUnavailable

logger = logging.getLogger("kedro_runs.service")

STOP = reports.CapacityChanged()  # marks the end of the supervisor's inbox at shutdown

# A batch that failed this many times in a row, for a reason other than a full disk,
# is applied run by run, so the one run whose reports cannot be written is found.
WRITE_ATTEMPTS = 3
RETRY_SECONDS = 0.5

ApplyReports = Callable[[list[reports.Report]], Awaitable[None]]


async def supervise(
    inbox: asyncio.Queue[reports.Report],
    lock: asyncio.Lock,
    apply_reports: ApplyReports,
    dispatch: Callable[[], Awaitable[None]],
    unrecordable: Callable[[str, Exception], None],
    abandon: Callable[[], bool] = lambda: False,
) -> None:
    """Apply worker reports in order, then dispatch. A batch whose write failed is
    retried as it is (the transaction rolled back): for as long as the store says it
    may pass (``ServiceUnavailable``, such as ``StorageFull``: nothing is dropped),
    otherwise ``WRITE_ATTEMPTS`` times; then each run's reports are applied on their
    own, and those of a run that still fail are dropped and the run is handed to
    ``unrecordable`` (the service fails it), so one run never holds up the others or
    the shutdown.
    Ends after the ``STOP`` marker, once everything before it is applied or dropped; or,
    after it, as soon as the store is unavailable and ``abandon()`` says not to wait (the
    runs those reports were about stay active in the store, for the next start)."""
    unapplied: list[reports.Report] = []
    stop = False
    unavailable = False  # logged once per episode, not on every retry
    failures = 0  # consecutive failures of the batch, the store being available
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
            if unavailable:
                logger.warning("the run store can write again")
            unavailable, failures = False, 0
            continue
        except ServiceUnavailable as error:
            if stop and abandon():
                logger.error(
                    "%s Stopping now: %d worker report(s) not recorded; the next start "
                    "recovers their runs.",
                    error,
                    sum(1 for report in unapplied if report is not STOP),
                )
                return
            if not unavailable:
                logger.warning("%s Retrying worker reports until it can write.", error)
            unavailable = True
        except Exception:
            failures += 1
            logger.exception("failed to record worker reports or dispatch; retrying")
            if unapplied and failures >= WRITE_ATTEMPTS:
                unapplied = await _apply_run_by_run(unapplied, lock, apply_reports, unrecordable)
                failures = 0
        await asyncio.sleep(RETRY_SECONDS)
        if not unapplied and not stop:  # the dispatch failed: try it again
            inbox.put_nowait(reports.CapacityChanged())


async def _apply_run_by_run(
    batch: list[reports.Report],
    lock: asyncio.Lock,
    apply_reports: ApplyReports,
    unrecordable: Callable[[str, Exception], None],
) -> list[reports.Report]:
    """Apply each run's reports of ``batch`` in a transaction of its own (each run's in
    their order; runs are independent of each other). Returns the reports still to
    retry (those the store could not take for now)."""
    by_run: dict[str, list[reports.Report]] = {}
    for report in batch:
        run_id = getattr(report, "run_id", None)  # CapacityChanged has none: nothing to write
        if run_id is not None:
            by_run.setdefault(run_id, []).append(report)
    retry: list[reports.Report] = []
    for run_id, run_reports in by_run.items():
        try:
            async with lock:
                await apply_reports(run_reports)
        except ServiceUnavailable:
            retry.extend(run_reports)
        except Exception as error:
            logger.error(
                "the reports of run %s cannot be recorded (%s: %s); dropping them and "
                "failing the run",
                run_id,
                type(error).__name__,
                error,
                extra={"run_id": run_id},
            )
            async with lock:
                unrecordable(run_id, error)
    return retry

"""The process pool on its own: a claimed run waits for a replacement worker."""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import Callable
from pathlib import Path

from app.domain import reports
from app.domain.ports import RunAssignment
from app.domain.runs import RunSpec
from app.kedro_bridge.project import ProjectLocation
from app.worker.pool import ProcessWorkerPool
from app.worker.process import WorkerConfig


async def _until(condition: Callable[[], bool]) -> None:
    async with asyncio.timeout(60):
        while not condition():  # noqa: ASYNC110 (the pool offers no event to wait on)
            await asyncio.sleep(0.02)


def test_a_run_handed_over_while_no_worker_lives_runs_on_the_replacement(project: Path) -> None:
    async def scenario() -> list[reports.Report]:
        received: list[reports.Report] = []
        pool = ProcessWorkerPool(WorkerConfig(ProjectLocation(project)), size=1)
        await pool.start(received.append)
        try:
            await _until(lambda: pool.idle_slots() == 1)
            (worker,) = pool._workers.values()
            assert worker.process.pid is not None
            os.kill(worker.process.pid, signal.SIGKILL)
            await _until(lambda: pool.ready_workers == 0)
            assert pool.idle_slots() == 0
            pool.execute(
                RunAssignment(
                    "run-1", "2026-01-01T00.00.00.000Z", RunSpec(pipeline_names=("noop",))
                )
            )
            assert pool.idle_slots() == 0  # the pending run holds the next slot
            await _until(lambda: any(isinstance(r, reports.RunSucceeded) for r in received))
        finally:
            await pool.stop()
        return received

    received = asyncio.run(scenario())
    run_reports = [r for r in received if not isinstance(r, reports.CapacityChanged)]
    # The run's outputs and log lines reach the service before its end does.
    assert [type(r).__name__ for r in run_reports] == [
        "NodeStarted",
        "NodeCompleted",
        "RunOutputs",
        "RunLogs",
        "RunSucceeded",
    ]
    assert all(r.run_id == "run-1" for r in run_reports)  # type: ignore[union-attr]

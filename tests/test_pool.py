"""The process pool: a claimed run waits for a replacement worker; a worker that cannot
be spawned is tried again."""

from __future__ import annotations

import asyncio
import os
import resource
import signal
from collections.abc import Callable
from pathlib import Path

import pytest
from conftest import ServiceProcess

from app import faults
from app.domain import reports
from app.domain.ports import RunAssignment
from app.domain.runs import RunSpec
from app.kedro_bridge.project import ProjectLocation
from app.worker.pool import ProcessWorkerPool
from app.worker.process import WorkerConfig
from app.worker.spawning import raise_open_file_limit


def _proceeding(
    pool: ProcessWorkerPool, received: list[reports.Report]
) -> Callable[[reports.Report], None]:
    """A deliver callback that keeps every report and, as the service does once it has
    recorded a worker's acknowledgement, lets the run proceed."""

    def deliver(report: reports.Report) -> None:
        received.append(report)
        if isinstance(report, reports.RunStarted):
            pool.proceed(report.run_id)

    return deliver


async def _until(condition: Callable[[], bool]) -> None:
    async with asyncio.timeout(60):
        while not condition():  # noqa: ASYNC110 (the pool offers no event to wait on)
            await asyncio.sleep(0.02)


def test_a_run_handed_over_while_no_worker_lives_runs_on_the_replacement(project: Path) -> None:
    async def scenario() -> list[reports.Report]:
        received: list[reports.Report] = []
        pool = ProcessWorkerPool(WorkerConfig(ProjectLocation(project)), size=1)
        await pool.start(_proceeding(pool, received))
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
        "RunStarted",
        "NodeStarted",
        "NodeCompleted",
        "RunOutputs",
        "RunLogs",
        "RunSucceeded",
    ]
    assert all(r.run_id == "run-1" for r in run_reports)  # type: ignore[union-attr]


def _open_descriptors() -> set[str]:
    return set(os.listdir("/proc/self/fd"))


def test_a_worker_that_cannot_be_spawned_is_tried_again_and_leaks_no_pipe(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The first two spawns run out of file descriptors for real, after one pipe each.
    monkeypatch.setenv(faults.SPAWN_ENV_VAR, "1:2")
    faults.arm_from_environment()

    async def scenario() -> list[reports.Report]:
        received: list[reports.Report] = []
        pool = ProcessWorkerPool(WorkerConfig(ProjectLocation(project)), size=1)
        before = _open_descriptors()
        await pool.start(_proceeding(pool, received))  # does not raise: the slot is tried again
        try:
            assert pool.ready_workers == 0
            assert _open_descriptors() == before  # the half-made pipe was closed
            await _until(lambda: pool.ready_workers == 1)
            pool.execute(
                RunAssignment(
                    "run-1", "2026-01-01T00.00.00.000Z", RunSpec(pipeline_names=("noop",))
                )
            )
            await _until(lambda: any(isinstance(r, reports.RunSucceeded) for r in received))
        finally:
            await pool.stop()
        return received

    try:
        asyncio.run(scenario())
    finally:
        monkeypatch.delenv(faults.SPAWN_ENV_VAR)
        faults.arm_from_environment()


def test_the_open_file_limit_is_raised_to_the_hard_limit() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(256, hard), hard))
    try:
        raise_open_file_limit()
        # An unlimited hard limit is not a soft limit Linux takes: 2**20 is then the aim.
        expected = hard if hard != resource.RLIM_INFINITY else 1 << 20
        assert resource.getrlimit(resource.RLIMIT_NOFILE)[0] == expected
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def test_a_service_whose_worker_cannot_be_respawned_for_a_while_runs_its_queued_runs(
    project: Path,
) -> None:
    # Spawn 1 is the first worker; 2-4, its replacements, run out of file descriptors.
    service = ServiceProcess(project, workers=1, env={faults.SPAWN_ENV_VAR: "2:3"}).start()
    try:
        crashed = service.submit(pipeline_names=["crash"])
        assert service.wait(crashed["run_id"])["error"]["reason"] == "worker_lost"
        queued = [service.submit(pipeline_names=["noop"])["run_id"] for _ in range(3)]
        # Meanwhile a run's wait is bounded by its timeout (the worker is back after 7 s).
        bounded = service.submit(pipeline_names=["noop"], timeout_seconds=1)["run_id"]
        assert service.wait(bounded, timeout=30)["error"]["reason"] == "timeout"
        # Back-offs of 1, 2 and 4 s, then the fifth spawn works.
        runs = [service.wait(run_id, timeout=60) for run_id in queued]
        assert [run["status"] for run in runs] == ["succeeded"] * 3
        service.wait_for_workers(1)
        assert "could not start a worker in slot 0 (OSError" in service.log_path.read_text()
    finally:
        service.stop()


def test_a_handed_over_run_runs_no_node_before_its_hand_over_is_recorded(project: Path) -> None:
    async def scenario() -> tuple[list[reports.Report], list[reports.Report]]:
        received: list[reports.Report] = []
        pool = ProcessWorkerPool(WorkerConfig(ProjectLocation(project)), size=1)
        await pool.start(received.append)  # nobody records anything: no proceed
        try:
            await _until(lambda: pool.idle_slots() == 1)
            noop = RunSpec(pipeline_names=("noop",))
            pool.execute(RunAssignment("run-1", "2026-01-01T00.00.00.000Z", noop))
            await _until(lambda: any(isinstance(r, reports.RunStarted) for r in received))
            await asyncio.sleep(1.0)  # Kedro has loaded the project by now: it waits
            held = list(received)
            pool.proceed("run-1")
            await _until(lambda: any(isinstance(r, reports.RunSucceeded) for r in received))
            # A run cancelled while it waits ends cancelled, and no node of it runs.
            received.clear()
            pool.execute(RunAssignment("run-2", "2026-01-01T00.00.01.000Z", noop))
            await _until(lambda: any(isinstance(r, reports.RunStarted) for r in received))
            pool.request_cancel("run-2")
            await _until(lambda: any(isinstance(r, reports.RunCancelled) for r in received))
        finally:
            await pool.stop()
        return held, received

    held, cancelled = asyncio.run(scenario())
    assert not any(isinstance(r, reports.NodeStarted) for r in held)
    assert not any(isinstance(r, reports.NodeStarted) for r in cancelled)

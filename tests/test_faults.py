"""Faults: a worker that dies mid-run, and the whole service killed with -9 and restarted."""

from __future__ import annotations

import os
import signal
import time
from collections import Counter
from pathlib import Path

import pytest
from conftest import ServiceProcess, ledger
from support import process_group


@pytest.mark.parametrize("pipeline", ["crash", "segfault", "sigkill"])
def test_a_worker_that_dies_mid_run_fails_that_run_only(
    service: ServiceProcess, pipeline: str
) -> None:
    innocent = service.submit(pipeline_names=["slow"], params={"slow": {"seconds": 0.4}})
    crashed = service.submit(pipeline_names=[pipeline])
    run = service.wait(crashed["run_id"], timeout=30)
    assert run["status"] == "failed"
    assert run["error"]["reason"] == "worker_lost"
    assert run["error"]["type"] == "WorkerLost"
    assert service.wait(innocent["run_id"])["status"] == "succeeded"
    service.wait_for_workers(2)  # the dead worker was replaced
    after = [service.submit(pipeline_names=["noop"])["run_id"] for _ in range(4)]
    assert [service.wait(r)["status"] for r in after] == ["succeeded"] * 4


def _group_members(pgid: int) -> list[int]:
    return [pid for pid, fields in process_group(pgid).items() if fields[0] != "Z"]


@pytest.mark.parametrize("target", ["api-process", "process-group"])
def test_kill_9_then_restart_loses_nothing_and_runs_nothing_twice(
    project: Path, target: str
) -> None:
    first = ServiceProcess(project, workers=2).start()
    first.wait_for_workers(2)
    running = [
        first.submit(pipeline_names=["stuck"], params={"sleep_forever": 600})["run_id"]
        for _ in range(2)
    ]
    for run_id in running:
        first.wait(run_id, {"running"})
    queued = [
        first.submit(pipeline_names=["tenant"], params={"tenant": f"k{i}"})["run_id"]
        for i in range(6)
    ]
    assert {first.get(r)["status"] for r in queued} == {"queued"}
    while sum(1 for line in ledger(project) if line.endswith(" sleep_forever")) < 2:
        time.sleep(0.05)

    # Either the whole service dies at once, or only the API process does: then its
    # workers must notice and stop by themselves, not go on behind the next service.
    assert first.process is not None
    pgid = first.process.pid
    if target == "api-process":
        os.kill(first.process.pid, signal.SIGKILL)
        first.process.wait(timeout=10)
    else:
        first.kill_hard()
    deadline = time.monotonic() + 15
    while _group_members(pgid) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _group_members(pgid) == []
    first.client.close()

    second = ServiceProcess(project, workers=2).start()
    try:
        for run_id in running:
            run = second.get(run_id)
            assert run["status"] == "failed"
            assert run["error"]["reason"] == "worker_lost"
        finished = [second.wait(run_id, timeout=60) for run_id in queued]
        assert [run["status"] for run in finished] == ["succeeded"] * 6
        listed = second.client.get("/runs", params={"limit": 200}).json()["items"]
        assert sorted(r["run_id"] for r in listed) == sorted(running + queued)
        executions = Counter(line.split()[0] for line in ledger(project))
        save_versions = [second.get(r)["save_version"] for r in running + queued]
        assert [executions[v] for v in save_versions] == [1] * 8
    finally:
        second.stop()


def test_sigterm_interrupts_running_runs_keeps_queued_ones_and_exits_0(project: Path) -> None:
    first = ServiceProcess(project, workers=1).start()
    running = first.submit(pipeline_names=["stuck"], params={"sleep_forever": 600})["run_id"]
    first.wait(running, {"running"})
    queued = first.submit(pipeline_names=["noop"])["run_id"]
    assert first.get(queued)["status"] == "queued"
    assert first.process is not None
    first.process.send_signal(signal.SIGTERM)
    assert first.process.wait(timeout=60) == 0
    first.client.close()

    second = ServiceProcess(project, workers=1).start()
    try:
        run = second.get(running)
        assert run["status"] == "failed"
        assert run["error"]["reason"] == "interrupted"
        assert second.wait(queued)["status"] == "succeeded"
    finally:
        second.stop()


def test_a_run_past_its_timeout_is_stopped_and_its_slot_comes_back(
    service: ServiceProcess,
) -> None:
    started = time.monotonic()
    run_id = service.submit(
        pipeline_names=["stuck"], params={"sleep_forever": 600}, timeout_seconds=1.5
    )["run_id"]
    run = service.wait(run_id, timeout=30)
    assert run["status"] == "failed"
    assert run["error"]["reason"] == "timeout"
    assert run["error"]["type"] == "RunTimeout"
    assert run["request"]["timeout_seconds"] == 1.5
    assert time.monotonic() - started >= 1.5
    service.wait_for_workers(2)
    assert service.wait(service.submit(pipeline_names=["noop"])["run_id"])["status"] == "succeeded"


def test_a_timeout_above_the_server_maximum_is_refused(service: ServiceProcess) -> None:
    response = service.client.post(
        "/runs", json={"pipeline_names": ["noop"], "timeout_seconds": 10 * 24 * 3600}
    )
    assert response.status_code == 422
    assert response.json()["errors"][0]["loc"] == ["body", "timeout_seconds"]
    for bad in (0, -1, "1"):
        response = service.client.post(
            "/runs", json={"pipeline_names": ["noop"], "timeout_seconds": bad}
        )
        assert response.status_code == 422


def test_sigterm_lets_running_runs_finish_within_the_drain_budget(project: Path) -> None:
    first = ServiceProcess(project, workers=1, env={"KEDRO_RUNS_DRAIN_SECONDS": "20"}).start()
    running = first.submit(pipeline_names=["slow"], params={"slow": {"seconds": 1.0}})["run_id"]
    first.wait(running, {"running"})
    queued = first.submit(pipeline_names=["noop"])["run_id"]
    assert first.process is not None
    first.process.send_signal(signal.SIGTERM)
    # The service goes on listening while its run drains: not ready, no new runs, and
    # every refusal is a problem with Retry-After. Reads still work.
    deadline = time.monotonic() + 10
    while first.client.get("/readyz").status_code == 200:
        assert time.monotonic() < deadline, "still ready after SIGTERM"
        time.sleep(0.02)
    refusals = [
        first.client.get("/readyz"),
        first.client.post("/runs", json={"pipeline_names": ["noop"]}),
        first.client.post("/run", json={"pipeline_names": ["noop"]}),
    ]
    for refused in refusals:
        assert refused.status_code == 503, refused.text
        assert int(refused.headers["retry-after"]) > 0
        assert refused.headers["content-type"] == "application/problem+json"
    assert first.get(running)["status"] == "running"  # still draining: it had 3 s to go
    assert first.get(queued)["status"] == "queued"
    assert first.process.wait(timeout=60) == 0
    first.client.close()

    second = ServiceProcess(project, workers=1).start()
    try:
        assert second.get(running)["status"] == "succeeded"  # it finished within the drain
        assert second.wait(queued)["status"] == "succeeded"  # it stayed queued, then ran
        listed = second.client.get("/runs", params={"limit": 200}).json()["items"]
        assert len(listed) == 2  # the refused submissions left nothing
    finally:
        second.stop()

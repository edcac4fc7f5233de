"""Crash points (T01-T05), opt-in retry and poison runs.

The API process is killed with SIGKILL at each point between accepting a run and
recording its end (through the test-only ``KEDRO_RUNS_CRASH_AT`` hook, or by the test
while a node runs), then a second service starts on the same project and store. Every
accepted run must be found, end in exactly one valid state, and have executed no more
often than its ``max_attempts`` allow; the project's ledger (one line per node
execution, keyed by the save version Kedro received) is the independent count.
"""

from __future__ import annotations

import os
import signal
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import ServiceProcess, ledger
from support import process_group

SLOW_NODES = ["slow_start", "slow_step_1", "slow_step_2", "slow_step_3"]


def _body(index: int) -> dict[str, Any]:
    # Even submissions opt into one retry, odd ones do not.
    return {
        "pipeline_names": ["slow"],
        "params": {"slow": {"seconds": 0.3}},
        "max_attempts": 2 if index % 2 == 0 else 1,
    }


def _submit_until_refused(
    service: ServiceProcess, count: int
) -> tuple[dict[str, str], list[tuple[str, dict[str, Any], Exception]]]:
    """Submit ``count`` runs with Idempotency-Keys until one gets no answer. Returns the
    runs answered 202 (key -> run id) and the unanswered submission, if any."""
    accepted: dict[str, str] = {}
    for index in range(count):
        key, body = f"crash-{index}", _body(index)
        try:
            response = service.client.post("/runs", json=body, headers={"Idempotency-Key": key})
        except httpx.TransportError as error:
            return accepted, [(key, body, error)]
        assert response.status_code == 202, response.text
        accepted[key] = response.json()["run_id"]
    return accepted, []


def _wait_until_dead(service: ServiceProcess) -> None:
    """The API process died of SIGKILL, and every worker it had exited after it."""
    assert service.process is not None
    assert service.process.wait(timeout=60) == -signal.SIGKILL
    pgid = service.process.pid
    deadline = time.monotonic() + 15
    while _alive(pgid) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _alive(pgid) == []
    service.client.close()


def _wait_for_node(project: Path, node: str, timeout: float = 60) -> None:
    """Until some run has begun ``node`` (the ledger says so)."""
    deadline = time.monotonic() + timeout
    while not any(line.endswith(f" {node}") for line in ledger(project)):
        assert time.monotonic() < deadline, f"no run began {node}"
        time.sleep(0.02)


def _alive(pgid: int) -> list[int]:
    return [pid for pid, fields in process_group(pgid).items() if fields[0] != "Z"]


def _attempt_versions(service: ServiceProcess, run_id: str) -> list[str]:
    """The save version of each counted attempt, from the run's run_started events (a
    claim that no worker took was given back: it is not an attempt)."""
    versions: list[str] = []
    for event in service.events(run_id):
        if event["type"] == "run_started":
            versions.append(event["data"]["save_version"])
        elif _given_back(event):
            versions.pop()
    return versions


def _given_back(event: dict[str, Any]) -> bool:
    return event["type"] == "run_requeued" and event["data"]["reason"] == "not_handed_over"


def _executions(project: Path) -> Counter[tuple[str, str]]:
    """(save version, node) -> how many times the node ran under that save version."""
    pairs = (line.split(" ", 1) for line in ledger(project))
    return Counter((version, node) for version, node in pairs)


@pytest.mark.parametrize(
    "point",
    [
        "after_insert_before_202",
        "after_claim",
        "after_hand_over",
        "mid_run",
        "after_run_before_status",
    ],
)
def test_kill_9_at_a_crash_point_loses_no_run_and_runs_none_too_often(
    project: Path, point: str
) -> None:
    env = {} if point == "mid_run" else {"KEDRO_RUNS_CRASH_AT": f"{point}:3"}
    first = ServiceProcess(project, workers=2, env=env).start()
    first.wait_for_workers(2)
    accepted, unanswered = _submit_until_refused(first, 6)
    if point == "mid_run":
        assert unanswered == []
        _wait_for_node(project, "slow_step_2")
        assert first.process is not None
        os.kill(first.process.pid, signal.SIGKILL)
    _wait_until_dead(first)
    if point == "after_insert_before_202":
        # The third submission was committed, then the process died before answering.
        assert len(accepted) == 2
        assert len(unanswered) == 1
        assert not isinstance(unanswered[0][2], httpx.ConnectError)  # it was sent

    second = ServiceProcess(project, workers=2).start()
    try:
        # A client retrying what got no answer, with the same key, gets one run.
        runs = dict(accepted)
        for key, body, _ in unanswered:
            response = second.client.post("/runs", json=body, headers={"Idempotency-Key": key})
            assert response.status_code == 202, response.text
            if point == "after_insert_before_202":
                assert response.headers["idempotent-replayed"] == "true"
            runs[key] = response.json()["run_id"]
        listed = second.client.get("/runs", params={"limit": 200}).json()["items"]
        assert sorted(run["run_id"] for run in listed) == sorted(runs.values())

        bodies = {f"crash-{i}": _body(i) for i in range(6)}
        lost_attempts = [
            lost
            for key, run_id in runs.items()
            for lost in _check_run(second, run_id, bodies[key]["max_attempts"])
        ]
        executions = _executions(project)
        if point in {"after_claim", "after_hand_over"}:
            # The run claimed last ran no node (its worker had not been told, or its
            # acknowledgement was not recorded): requeued, its attempt given back. Under
            # the save version it keeps, each node ran once (_check_run).
            given_back = [e for r in runs.values() for e in second.events(r) if _given_back(e)]
            assert len(given_back) == 1
        if point == "after_run_before_status":  # a run ended, but its end was not recorded
            assert any(executions[(v, "slow_step_3")] == 1 for v in lost_attempts)
        if point == "mid_run":  # the killed runs were between their nodes
            assert any(executions[(v, "slow_step_2")] == 1 for v in lost_attempts)
    finally:
        second.stop()


def _check_run(service: ServiceProcess, run_id: str, max_attempts: int) -> list[str]:
    """The run ended in one valid state, each attempt ran the pipeline at most once, and
    only a run with no attempts left failed. Returns the save versions of its lost
    attempts."""
    run = service.wait(run_id, timeout=90)
    assert run["status"] in {"succeeded", "failed"}, run
    assert 1 <= run["attempts"] <= max_attempts
    versions = _attempt_versions(service, run_id)
    assert len(versions) == run["attempts"] == len(set(versions))
    assert run["save_version"] == versions[-1]
    # Kedro ran the pipeline at most once per attempt; a lost attempt may not have started.
    executions = _executions(service.project)
    starts = sum(executions[(version, "slow_start")] for version in versions)
    assert starts <= run["attempts"]
    for version in versions:
        assert all(executions[(version, node)] <= 1 for node in SLOW_NODES)
    if run["status"] == "succeeded":
        assert [executions[(versions[-1], node)] for node in SLOW_NODES] == [1, 1, 1, 1]
    else:
        assert run["error"]["reason"] == "worker_lost"
        assert run["attempts"] == max_attempts  # it failed only once out of attempts
    requeued = [
        e for e in service.events(run_id) if e["type"] == "run_requeued" and not _given_back(e)
    ]
    assert len(requeued) == run["attempts"] - 1
    return versions[:-1] if run["status"] == "succeeded" else versions


def test_a_run_committed_but_never_answered_runs_once_for_the_idempotent_retry(
    project: Path,
) -> None:
    """The crash came between the commit and the 202: the run was claimed, but no worker
    ever took it. It must run (once) for the client's retry, though it allows one attempt."""
    body = {"pipeline_names": ["slow"], "params": {"slow": {"seconds": 0.1}}, "max_attempts": 1}
    headers = {"Idempotency-Key": "unanswered"}
    first = ServiceProcess(
        project, workers=1, env={"KEDRO_RUNS_CRASH_AT": "after_insert_before_202"}
    )
    first.start().wait_for_workers(1)
    with pytest.raises(httpx.TransportError):
        first.client.post("/runs", json=body, headers=headers)
    _wait_until_dead(first)

    second = ServiceProcess(project, workers=1).start()
    try:
        response = second.client.post("/runs", json=body, headers=headers)
        assert response.headers["idempotent-replayed"] == "true"
        run = second.wait(response.json()["run_id"], timeout=60)
        assert (run["status"], run["attempts"]) == ("succeeded", 1)
        types = [e["type"] for e in second.events(run["run_id"])]
        assert types[:4] == ["run_queued", "run_started", "run_requeued", "run_started"]
        assert [_given_back(e) for e in second.events(run["run_id"])].count(True) == 1
        version = run["save_version"]  # the one it was claimed under: Kedro never had it
        assert [_executions(project)[(version, node)] for node in SLOW_NODES] == [1, 1, 1, 1]
    finally:
        second.stop()


def test_a_retry_queues_behind_the_runs_submitted_meanwhile(service: ServiceProcess) -> None:
    """Kedro loads the largest save version as "latest", so among runs that write the same
    files the one that runs last must have the largest: a retry, which gets a fresh save
    version, waits behind a conflicting run submitted while its first attempt ran."""
    first = service.submit(
        pipeline_names=["flaky_shared"],
        params={"flaky": {"token": "order-a", "mode": "exit_slowly"}},
        max_attempts=2,
    )
    service.wait(first["run_id"], {"running"})
    later = service.submit(
        pipeline_names=["flaky_shared"], params={"flaky": {"token": "order-b", "mode": "never"}}
    )
    assert later["save_version"] > first["save_version"]
    retried, other = service.wait(first["run_id"]), service.wait(later["run_id"])
    assert (retried["status"], retried["attempts"], other["status"]) == (
        "succeeded",
        2,
        "succeeded",
    )
    assert retried["save_version"] > other["save_version"]  # the retry's fresh version
    # ... and it ran after the run submitted meanwhile, so its output is the one left.
    assert other["timestamps"]["finished_at"] <= retried["timestamps"]["started_at"]
    shared = service.project / "data" / "flaky" / "shared.txt"
    assert shared.read_text() == "attempt after the first for order-a"


def test_a_run_that_opted_into_retry_survives_the_loss_of_its_worker(
    service: ServiceProcess,
) -> None:
    retried = service.submit(
        pipeline_names=["flaky"], params={"flaky": {"token": "retry-ok"}}, max_attempts=2
    )
    once = service.submit(pipeline_names=["flaky"], params={"flaky": {"token": "retry-no"}})
    assert retried["attempts"] <= 1
    assert retried["request"]["max_attempts"] == 2

    run = service.wait(retried["run_id"], timeout=60)
    assert run["status"] == "succeeded"
    assert run["attempts"] == 2
    events = service.events(retried["run_id"])
    requeued = [e for e in events if e["type"] == "run_requeued"]
    assert len(requeued) == 1
    assert requeued[0]["data"]["reason"] == "worker_lost"
    assert requeued[0]["data"]["attempt"] == 1
    first, second = _attempt_versions(service, retried["run_id"])
    assert first != second  # a fresh save version for the second attempt
    assert requeued[0]["data"]["next_save_version"] == second == run["save_version"]
    executions = _executions(service.project)
    assert executions[(first, "lost_on_first_attempt")] == 1
    assert executions[(second, "lost_on_first_attempt")] == 1

    failed = service.wait(once["run_id"], timeout=60)
    assert failed["status"] == "failed"
    assert failed["error"]["reason"] == "worker_lost"
    assert failed["attempts"] == 1


def test_max_attempts_is_a_strict_integer_from_1_to_5(service: ServiceProcess) -> None:
    for bad in (0, 6, "2", 2.0, True, None):
        response = service.client.post(
            "/runs", json={"pipeline_names": ["noop"], "max_attempts": bad}
        )
        assert response.status_code == 422, (bad, response.text)
        assert response.json()["errors"][0]["loc"] == ["body", "max_attempts"]
    run = service.submit(pipeline_names=["noop"])
    assert run["request"]["max_attempts"] == 1


@pytest.mark.parametrize(
    ("pipeline", "node"), [("crash", "exit_process"), ("segfault", "segfault")]
)
def test_a_poison_run_ends_failed_after_its_attempts_and_harms_no_other_run(
    project: Path, pipeline: str, node: str
) -> None:
    service = ServiceProcess(project, workers=2).start()
    try:
        service.wait_for_workers(2)
        poison = service.submit(pipeline_names=[pipeline], max_attempts=3)["run_id"]
        innocent = [service.submit(pipeline_names=["noop"])["run_id"] for _ in range(20)]
        run = service.wait(poison, timeout=90)
        assert run["status"] == "failed"
        assert run["error"]["reason"] == "worker_lost"
        assert run["attempts"] == 3
        versions = _attempt_versions(service, poison)
        assert len(set(versions)) == 3
        executions = _executions(project)
        assert [executions[(v, node)] for v in versions] == [1, 1, 1]
        assert [service.wait(r, timeout=60)["status"] for r in innocent] == ["succeeded"] * 20
        service.wait_for_workers(2)  # every killed worker was replaced
    finally:
        service.stop()


def test_sigterm_requeues_a_run_that_opted_into_retry_and_the_next_start_runs_it(
    project: Path,
) -> None:
    first = ServiceProcess(project, workers=1).start()
    run_id = first.submit(
        pipeline_names=["flaky"],
        params={"flaky": {"token": "drain", "mode": "hang"}},
        max_attempts=2,
    )["run_id"]
    _wait_for_node(project, "lost_on_first_attempt")
    assert first.process is not None
    first.process.send_signal(signal.SIGTERM)
    assert first.process.wait(timeout=60) == 0
    first.client.close()

    second = ServiceProcess(project, workers=1).start()
    try:
        run = second.wait(run_id, timeout=60)
        assert run["status"] == "succeeded"
        assert run["attempts"] == 2
        requeued = [e for e in second.events(run_id) if e["type"] == "run_requeued"]
        assert [e["data"]["reason"] for e in requeued] == ["interrupted"]
    finally:
        second.stop()

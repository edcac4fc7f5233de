"""Cluster mode: several `kedro-runs serve --cluster` replicas on one PostgreSQL database
behave as one service. Real replicas (processes with their own worker pools), a real
PostgreSQL database per test, the real test project; a client that picks a replica per
request at random."""

from __future__ import annotations

import itertools
import os
import random
import signal
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import TERMINAL, ServiceProcess

LEASE = {"KEDRO_RUNS_LEASE_SECONDS": "3", "KEDRO_RUNS_HEARTBEAT_SECONDS": "0.5"}


def replica(project: Path, url: str, index: int, workers: int = 2) -> ServiceProcess:
    return ServiceProcess(
        project,
        workers=workers,
        env={
            "KEDRO_RUNS_DATABASE": url,
            "KEDRO_RUNS_CLUSTER": "true",
            "KEDRO_RUNS_CANCEL_GRACE_SECONDS": "1",
            **LEASE,
        },
        log_path=project / f"replica-{index}.log",
    )


def start_all(processes: list[ServiceProcess]) -> list[ServiceProcess]:
    """Start every replica at once (they race for the empty database's migrations)."""
    with ThreadPoolExecutor(len(processes)) as pool:
        list(pool.map(lambda process: process.start(timeout=120), processes))
    return processes


@pytest.fixture
def cluster(project: Path, postgres_url: str) -> Iterator[list[ServiceProcess]]:
    replicas = start_all([replica(project, postgres_url, i) for i in range(3)])
    yield replicas
    for process in replicas:
        process.stop()


def at(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


class AnyReplica:
    """A client that sends each request to a replica chosen at random."""

    def __init__(self, replicas: list[ServiceProcess], seed: int = 20261202) -> None:
        self._clients = [httpx.Client(base_url=r.url, timeout=60) for r in replicas]
        self._random = random.Random(seed)
        self._lock = threading.Lock()

    def client(self) -> httpx.Client:
        with self._lock:
            return self._random.choice(self._clients)

    def submit(self, **body: Any) -> dict[str, Any]:
        response = self.client().post("/runs", json=body)
        assert response.status_code == 202, response.text
        return dict(response.json())

    def wait(self, run_id: str, timeout: float = 120) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            response = self.client().get(f"/runs/{run_id}", params={"wait": 5})
            assert response.status_code == 200, response.text
            run = dict(response.json())
            if run["status"] in TERMINAL:
                return run
        raise TimeoutError(f"run {run_id} never ended")

    def events(self, run_id: str) -> list[dict[str, Any]]:
        response = self.client().get(f"/runs/{run_id}/events")
        assert response.status_code == 200, response.text
        return list(response.json()["items"])

    def close(self) -> None:
        for client in self._clients:
            client.close()


def test_any_replica_answers_for_a_run_submitted_to_another(
    cluster: list[ServiceProcess],
) -> None:
    first, second, third = cluster
    run = first.submit(pipeline_names=["noop"])
    # A long poll on another replica wakes when the run ends, wherever it ran.
    response = second.client.get(f"/runs/{run['run_id']}", params={"wait": 30})
    assert response.json()["status"] == "succeeded"
    types = [event["type"] for event in third.events(run["run_id"])]
    assert types == ["run_queued", "run_started", "node_started", "node_completed", "run_succeeded"]
    # The run's event stream from a third replica ends with its end.
    with third.client.stream(
        "GET", f"/runs/{run['run_id']}/events", headers={"Accept": "text/event-stream"}
    ) as stream:
        body = "".join(stream.iter_text())
    assert "event: run_succeeded" in body


def _state_changes(process: ServiceProcess, last_event_id: str, count: int) -> list[str]:
    """The first ``count`` ``id: … / data: …`` pairs of /events after ``last_event_id``."""
    found: list[str] = []
    headers = {"Accept": "text/event-stream", "Last-Event-ID": last_event_id}
    with process.client.stream("GET", "/events", headers=headers, timeout=30) as stream:
        for line in stream.iter_lines():
            if line.startswith("id: "):
                found.append(line.removeprefix("id: "))
            elif line.startswith("data: "):
                found[-1] += " " + line.removeprefix("data: ")
                if len(found) == count:
                    return found
    return found


def test_the_state_change_feed_is_one_feed_a_client_resumes_on_any_replica(
    cluster: list[ServiceProcess],
) -> None:
    first, second, _ = cluster
    runs = [first.submit(pipeline_names=["noop"]), second.submit(pipeline_names=["noop"])]
    for run in runs:
        first.wait(run["run_id"])
    on_first = _state_changes(first, "0", 6)
    assert len(on_first) == 6
    ids = [int(change.split(" ")[0]) for change in on_first]
    assert ids == sorted(ids)
    # Moved to another replica after the third change, the client gets the same rest.
    assert _state_changes(second, str(ids[2]), 3) == on_first[3:]
    seen = {change.split('"run_id": "')[1][:36] for change in on_first}
    assert seen == {run["run_id"] for run in runs}


def test_a_run_is_cancelled_from_a_replica_that_does_not_run_it(
    project: Path, postgres_url: str
) -> None:
    runner = replica(project, postgres_url, 0, workers=1)
    front = replica(project, postgres_url, 1, workers=0)  # takes requests, runs nothing
    start_all([runner, front])
    try:
        ready = front.client.get("/readyz")
        assert ready.status_code == 200, ready.text  # another replica has a worker
        run = front.submit(pipeline_names=["stuck"], params={"sleep_forever": 600})
        front.wait(run["run_id"], {"running"})
        response = front.client.post(f"/runs/{run['run_id']}/cancel")
        assert response.status_code == 202, response.text
        ended = front.wait(run["run_id"], timeout=30)
        assert ended["status"] == "cancelled"
        # A run still queued past its timeout fails, whichever replica took it.
        busy = front.submit(pipeline_names=["stuck"], params={"sleep_forever": 600})
        front.wait(busy["run_id"], {"running"})
        late = front.submit(pipeline_names=["noop"], timeout_seconds=1)
        timed_out = front.wait(late["run_id"], timeout=30)
        assert timed_out["status"] == "failed", timed_out
        assert timed_out["error"]["reason"] == "timeout"
        assert front.client.post(f"/runs/{busy['run_id']}/cancel").status_code == 202
        front.wait(busy["run_id"], timeout=30)
        queued = front.submit(pipeline_names=["stuck"], params={"sleep_forever": 600})
        blocked = front.submit(pipeline_names=["noop"])
        front.client.post(f"/runs/{queued['run_id']}/cancel")
        front.client.post(f"/runs/{blocked['run_id']}/cancel")
        statuses = {front.wait(r["run_id"], timeout=30)["status"] for r in (queued, blocked)}
        assert statuses <= {"cancelled"}
    finally:
        front.stop()
        runner.stop()


def test_300_runs_on_3_replicas_start_once_never_overlap_a_conflict_and_keep_order(
    cluster: list[ServiceProcess],
) -> None:
    client = AnyReplica(cluster)
    shared = [f"shared-{i}" for i in range(4)]  # runs of one tenant write one file
    tenants = [
        shared[i % 4] if i % 3 else f"own-{i}"  # a third write files nobody else does
        for i in range(300)
    ]
    try:
        with ThreadPoolExecutor(8) as pool:
            submitted = list(
                pool.map(
                    lambda tenant: client.submit(
                        pipeline_names=["tenant"], params={"tenant": tenant, "delay": 0.01}
                    ),
                    tenants,
                )
            )
            ended = list(pool.map(lambda run: client.wait(run["run_id"]), submitted))
            histories = list(pool.map(lambda run: client.events(run["run_id"]), submitted))
    finally:
        client.close()
    assert {run["status"] for run in ended} == {"succeeded"}
    versions = [run["save_version"] for run in submitted]
    assert len(set(versions)) == 300
    spans = []
    for run, tenant, history in zip(submitted, tenants, histories, strict=True):
        types = [event["type"] for event in history]
        assert types.count("run_started") == 1, (run["run_id"], types)
        assert types.count("node_started") == 1, (run["run_id"], types)
        start = at(next(e["at"] for e in history if e["type"] == "run_started"))
        end = at(history[-1]["at"])
        spans.append((tenant, run["save_version"], start, end))
    overlaps = order_violations = 0
    for (t1, v1, s1, e1), (t2, v2, s2, e2) in itertools.combinations(spans, 2):
        if t1 != t2:
            continue
        if s1 < e2 and s2 < e1:
            overlaps += 1
        if (v1 < v2) != (s1 < s2):
            order_violations += 1
    assert (overlaps, order_violations) == (0, 0)


def test_one_idempotency_key_sent_to_every_replica_at_once_makes_one_run(
    cluster: list[ServiceProcess],
) -> None:
    body = {"pipeline_names": ["noop"]}
    for _ in range(10):
        key = str(uuid.uuid4())
        barrier = threading.Barrier(len(cluster))

        def send(
            process: ServiceProcess, key: str = key, barrier: threading.Barrier = barrier
        ) -> httpx.Response:
            barrier.wait()
            return process.client.post("/runs", json=body, headers={"Idempotency-Key": key})

        with ThreadPoolExecutor(len(cluster)) as pool:
            responses = list(pool.map(send, cluster))
        assert [r.status_code for r in responses] == [202] * 3, [r.text for r in responses]
        assert len({r.json()["run_id"] for r in responses}) == 1, [r.text for r in responses]
        replayed = [r.headers.get("Idempotent-Replayed") for r in responses]
        assert sorted(replayed, key=str) == [None, "true", "true"]


def test_a_replica_killed_with_runs_running_loses_none_and_doubles_none(
    project: Path, postgres_url: str
) -> None:
    # The replica to be killed starts alone, so the three long runs it is given first are
    # certainly its own when it dies: two that may not be retried, one that may. They last
    # long enough (20 s) for the other replicas to start beside it before the kill.
    doomed = start_all([replica(project, postgres_url, 0, workers=3)])[0]
    held = [
        doomed.submit(
            pipeline_names=["tenant"],
            params={"tenant": f"held-{i}", "delay": 20.0},
            max_attempts=max_attempts,
        )
        for i, max_attempts in enumerate([1, 1, 2])
    ]
    survivors: list[ServiceProcess] = []
    client: AnyReplica | None = None
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if all(
                doomed.client.get(f"/runs/{r['run_id']}").json()["status"] == "running"
                for r in held
            ):
                break
            time.sleep(0.05)
        else:
            raise AssertionError("the held runs never started")
        # More runs, some of them started on the replica about to die, the rest elsewhere.
        others = [
            doomed.submit(
                pipeline_names=["tenant"],
                params={"tenant": f"kill-{i}", "delay": 1.0},
                max_attempts=1 + i % 2,  # every other run may be retried
            )
            for i in range(9)
        ]
        survivors = start_all([replica(project, postgres_url, i) for i in (1, 2)])
        client = AnyReplica(survivors)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            states = [client.client().get(f"/runs/{r['run_id']}").json() for r in others]
            if sum(1 for s in states if s["status"] in {"running", *TERMINAL}) >= 2:
                break
            time.sleep(0.05)
        assert all(
            doomed.client.get(f"/runs/{r['run_id']}").json()["status"] == "running" for r in held
        )
        doomed.kill_hard()
        doomed.client.close()
        runs = held + others
        ended = [client.wait(run["run_id"], timeout=90) for run in runs]
        histories = [client.events(run["run_id"]) for run in runs]
    finally:
        if client is not None:
            client.close()
        for process in survivors:
            process.stop()
        doomed.stop()
    for run, history in zip(ended, histories, strict=True):
        types = [event["type"] for event in history]
        assert types[-1] in {"run_succeeded", "run_failed"}
        assert types.count("run_started") == run["attempts"]
        if run["status"] == "failed":
            assert run["error"]["reason"] == "worker_lost"
        # No two attempts of one run overlap: each start follows the previous end.
        starts = [e["seq"] for e in history if e["type"] == "run_started"]
        requeues = [e["seq"] for e in history if e["type"] == "run_requeued"]
        assert all(r < s for r, s in zip(requeues, starts[1:], strict=False))
    # The kill ended the runs it held that could not be retried; the one that could ran again.
    assert [(r["status"], r["attempts"]) for r in ended[:2]] == [("failed", 1), ("failed", 1)]
    assert (ended[2]["status"], ended[2]["attempts"]) == ("succeeded", 2)


def test_four_replicas_starting_at_once_on_an_empty_database_all_come_up(
    project: Path, postgres_url: str
) -> None:
    replicas = [replica(project, postgres_url, i, workers=1) for i in range(4)]
    try:
        start_all(replicas)
        run = replicas[3].submit(pipeline_names=["noop"])
        assert replicas[0].wait(run["run_id"])["status"] == "succeeded"
    finally:
        for process in replicas:
            process.stop()


def test_a_service_not_in_cluster_mode_refuses_a_database_replicas_use(
    cluster: list[ServiceProcess], project: Path, postgres_url: str
) -> None:
    loner = ServiceProcess(
        project, env={"KEDRO_RUNS_DATABASE": postgres_url}, log_path=project / "loner.log"
    )
    with pytest.raises(RuntimeError, match="in use"):
        loner.start(timeout=60)


def test_a_replica_without_workers_is_not_ready_until_another_has_one(
    project: Path, postgres_url: str
) -> None:
    front = replica(project, postgres_url, 0, workers=0)
    front.start(ready=False)
    try:
        response = front.client.get("/readyz")
        assert response.status_code == 503, response.text
        assert "worker" in response.json()["detail"]
        runner = replica(project, postgres_url, 1, workers=1).start()
        try:
            deadline = time.monotonic() + 30
            while front.client.get("/readyz").status_code != 200:
                assert time.monotonic() < deadline, "never ready"
                time.sleep(0.2)
        finally:
            runner.stop()
    finally:
        front.stop()


def test_a_replica_declared_dead_while_alive_cannot_end_what_another_took_over(
    project: Path, postgres_url: str
) -> None:
    """SIGSTOP a replica past its lease: another settles its run (requeued: it may be
    retried) and runs it again. Woken, the stale replica finds its lease gone: its own
    worker's end of the old attempt does not apply, and it serves on under a new lease."""
    stale = replica(project, postgres_url, 0, workers=1).start()
    taker: ServiceProcess | None = None
    try:
        run = stale.submit(
            pipeline_names=["tenant"], params={"tenant": "zombie", "delay": 4}, max_attempts=2
        )
        stale.wait(run["run_id"], {"running"})
        taker = replica(project, postgres_url, 1, workers=1).start()
        assert stale.process is not None
        os.killpg(stale.process.pid, signal.SIGSTOP)
        try:
            ended = taker.wait(run["run_id"], timeout=60)
        finally:
            os.killpg(stale.process.pid, signal.SIGCONT)
        assert (ended["status"], ended["attempts"]) == ("succeeded", 2)
        time.sleep(6)  # the stale attempt's node ends meanwhile, and is reported
        types = [event["type"] for event in taker.events(run["run_id"])]
        assert types == [
            "run_queued",
            "run_started",
            "node_started",
            "run_requeued",
            "run_started",
            "node_started",
            "node_completed",
            "run_succeeded",
        ]
        again = stale.submit(pipeline_names=["noop"])
        assert stale.wait(again["run_id"], timeout=30)["status"] == "succeeded"
    finally:
        if taker is not None:
            taker.stop()
        stale.stop()

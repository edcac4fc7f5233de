"""Bounded load: past the queue limit, submissions get 429 with an integer Retry-After."""

from __future__ import annotations

import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
from conftest import ServiceProcess


def test_a_full_queue_answers_429_and_every_admitted_run_finishes(project: Path) -> None:
    service = ServiceProcess(
        project,
        workers=1,
        extra_args=["--cancel-grace-seconds", "1"],
        env={"KEDRO_RUNS_MAX_QUEUED_RUNS": "5"},
    ).start()
    try:
        blocker = service.submit(pipeline_names=["stuck"], params={"sleep_forever": 600})
        service.wait(blocker["run_id"], {"running"})

        def submit(index: int) -> httpx.Response:
            with httpx.Client(base_url=service.url, timeout=30) as client:
                return client.post(
                    "/runs",
                    json={"pipeline_names": ["tenant"], "params": {"tenant": f"adm{index}"}},
                )

        with ThreadPoolExecutor(8) as pool:
            responses = list(pool.map(submit, range(20)))
        statuses = sorted(r.status_code for r in responses)
        assert statuses == [202] * 5 + [429] * 15  # exactly the queue's room, no 5xx
        for refused in (r for r in responses if r.status_code == 429):
            assert refused.headers["content-type"] == "application/problem+json"
            assert int(refused.headers["retry-after"]) >= 1
            assert refused.json()["status"] == 429
        assert service.client.post(f"/runs/{blocker['run_id']}/cancel").status_code == 202
        admitted = [r.json()["run_id"] for r in responses if r.status_code == 202]
        assert [service.wait(run_id)["status"] for run_id in admitted] == ["succeeded"] * 5
        listed = service.client.get("/runs", params={"limit": 200}).json()["items"]
        assert len(listed) == 6  # the blocker and the admitted runs; refusals left nothing
    finally:
        service.stop()


def test_a_burst_of_500_against_a_queue_of_100(project: Path) -> None:
    """Exactly the queue's room is admitted, every refusal is a 429 problem with an
    integer Retry-After, nothing is a 5xx, and every admitted run finishes."""
    service = ServiceProcess(
        project,
        workers=1,
        extra_args=["--cancel-grace-seconds", "1"],
        env={"KEDRO_RUNS_MAX_QUEUED_RUNS": "100"},
    ).start()
    try:
        blocker = service.submit(pipeline_names=["stuck"], params={"sleep_forever": 600})
        service.wait(blocker["run_id"], {"running"})
        limits = httpx.Limits(max_connections=16, max_keepalive_connections=16)
        with httpx.Client(base_url=service.url, timeout=60, limits=limits) as client:

            def submit(index: int) -> httpx.Response:
                return client.post(
                    "/runs", json={"pipeline_names": ["noop"], "params": {"burst": index}}
                )

            started = time.perf_counter()
            with ThreadPoolExecutor(16) as pool:
                responses = list(pool.map(submit, range(500)))
            burst_seconds = time.perf_counter() - started
        statuses = Counter(r.status_code for r in responses)
        print(f"burst of 500 in {burst_seconds:.2f} s: {dict(statuses)}")
        assert statuses == {202: 100, 429: 400}
        for refused in (r for r in responses if r.status_code == 429):
            assert refused.headers["content-type"] == "application/problem+json"
            assert refused.headers["retry-after"].isdigit()
            assert int(refused.headers["retry-after"]) >= 1
            assert refused.json()["status"] == 429
        assert service.client.post(f"/runs/{blocker['run_id']}/cancel").status_code == 202
        admitted = [r.json()["run_id"] for r in responses if r.status_code == 202]
        started = time.perf_counter()
        ended = Counter(service.wait(run_id, timeout=120)["status"] for run_id in admitted)
        print(f"the 100 admitted runs ended within {time.perf_counter() - started:.2f} s: {ended}")
        assert ended == {"succeeded": 100}
        listed = service.client.get("/runs", params={"limit": 200}).json()["items"]
        assert {r["run_id"] for r in listed} == {blocker["run_id"], *admitted}
    finally:
        service.stop()

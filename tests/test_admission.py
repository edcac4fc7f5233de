"""Bounded load: past the queue limit, submissions get 429 with an integer Retry-After."""

from __future__ import annotations

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

"""Idempotency-Key on POST /runs: exactly one run per intent."""

from __future__ import annotations

import json
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
from conftest import ServiceProcess


def _post(service: ServiceProcess, body: dict[str, object], key: str) -> httpx.Response:
    with httpx.Client(base_url=service.url, timeout=30) as client:
        return client.post("/runs", json=body, headers={"Idempotency-Key": key})


def test_twenty_concurrent_requests_with_one_key_create_one_run(service: ServiceProcess) -> None:
    key = f"intent-{uuid.uuid4()}"
    body = {"pipeline_names": ["tenant"], "params": {"tenant": "idem"}}
    with ThreadPoolExecutor(20) as pool:
        responses = list(pool.map(lambda _: _post(service, body, key), range(20)))
    assert {r.status_code for r in responses} <= {202, 409}
    run_ids = {r.json()["run_id"] for r in responses if r.status_code == 202}
    assert len(run_ids) == 1
    for conflict in (r for r in responses if r.status_code == 409):
        assert conflict.headers["content-type"] == "application/problem+json"
    (run_id,) = run_ids
    service.wait(run_id)
    again = _post(service, body, key)  # a retry after the fact: the original run
    assert again.status_code == 202
    assert again.json()["run_id"] == run_id
    assert again.headers["idempotent-replayed"] == "true"
    tenant_runs = [
        r
        for r in service.client.get("/runs", params={"limit": 200}).json()["items"]
        if r["run_id"] == run_id
    ]
    assert len(tenant_runs) == 1


def test_the_same_key_with_another_body_is_a_422(service: ServiceProcess) -> None:
    key = f"intent-{uuid.uuid4()}"
    first = _post(service, {"pipeline_names": ["noop"]}, key)
    assert first.status_code == 202
    other = _post(service, {"pipeline_names": ["noop"], "params": {"x": 1}}, key)
    assert other.status_code == 422
    assert other.json()["errors"][0]["loc"] == ["header", "Idempotency-Key"]


def test_keys_are_bounded(service: ServiceProcess) -> None:
    response = _post(service, {"pipeline_names": ["noop"]}, "k" * 256)
    assert response.status_code == 422


def test_post_run_takes_an_idempotency_key_too(service: ServiceProcess) -> None:
    key = f"intent-{uuid.uuid4()}"
    body = {"pipeline_names": ["slow"], "params": {"slow": {"seconds": 0.4}}}

    def run() -> httpx.Response:
        with httpx.Client(base_url=service.url, timeout=60) as client:
            return client.post("/run", json=body, headers={"Idempotency-Key": key})

    before = _slow_runs(service)
    with ThreadPoolExecutor(1) as pool:
        first = pool.submit(run)
        deadline = time.monotonic() + 30
        while _slow_runs(service) == before and time.monotonic() < deadline:
            time.sleep(0.02)  # until the first request's run exists
        # While the first request waits for its run, the key is in flight.
        retry = _post_run(service, body, key)
        assert not first.done()
        assert retry.status_code == 409, retry.text
        assert retry.headers["content-type"] == "application/problem+json"
        original = first.result()
    assert original.status_code == 200
    assert original.json()["status"] == "success"
    replay = _post_run(service, body, key)
    assert replay.status_code == 200
    assert replay.json()["run_id"] == original.json()["run_id"]
    assert replay.headers["idempotent-replayed"] == "true"
    other = _post_run(service, {"pipeline_names": ["noop"]}, key)
    assert other.status_code == 422
    assert other.json()["detail"][0]["loc"] == ["header", "Idempotency-Key"]  # Kedro's 422
    listed = service.client.get("/runs", params={"limit": 200}).json()["items"]
    # POST /run answers Kedro's run id: the run's save version.
    assert [r["save_version"] for r in listed].count(original.json()["run_id"]) == 1


def _post_run(service: ServiceProcess, body: dict[str, object], key: str) -> httpx.Response:
    return service.client.post("/run", json=body, headers={"Idempotency-Key": key})


def _slow_runs(service: ServiceProcess) -> set[str]:
    listed = service.client.get("/runs", params={"pipeline": "slow", "limit": 200}).json()
    return {r["run_id"] for r in listed["items"]}


def test_a_key_expires_after_its_time_to_live(project: Path) -> None:
    short = ServiceProcess(project, workers=1, env={"KEDRO_RUNS_IDEMPOTENCY_TTL_SECONDS": "1"})
    short.start()
    try:
        key = f"intent-{uuid.uuid4()}"
        body = {"pipeline_names": ["noop"]}
        first = _post(short, body, key).json()["run_id"]
        assert _post(short, body, key).json()["run_id"] == first  # within the TTL
        time.sleep(1.2)
        later = _post(short, body, key)
        assert later.status_code == 202
        assert later.json()["run_id"] != first  # the key expired: a new intent
        assert "idempotent-replayed" not in later.headers
        assert _post(short, body, key).json()["run_id"] == later.json()["run_id"]
    finally:
        short.stop()
    document = json.loads((Path(__file__).parents[1] / "openapi" / "openapi.json").read_text())
    header = next(
        p
        for p in document["paths"]["/runs"]["post"]["parameters"]
        if p["name"] == "Idempotency-Key"
    )
    assert "expire after" in header["description"]  # the policy is published

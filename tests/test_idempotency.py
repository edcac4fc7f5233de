"""Idempotency-Key on POST /runs: exactly one run per intent."""

from __future__ import annotations

import uuid
from concurrent.futures import ThreadPoolExecutor

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

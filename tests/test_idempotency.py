"""Idempotency-Key on POST /runs: exactly one run per intent, also when another process
stores a run under the same key at the same moment."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import datetime
from pathlib import Path

import httpx
from conftest import ServiceProcess

from app.domain.callers import ANONYMOUS
from app.domain.ports import IdempotencyKey, StoreWrite
from app.domain.runs import Footprint, Run, RunPlan, RunSpec
from app.domain.service import RunService
from app.kedro_bridge.project import ProjectLocation
from app.persistence.store import SqlRunStore
from app.plugins.manager import create_plugin_manager
from app.worker.pool import ProcessWorkerPool
from app.worker.process import WorkerConfig


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


class RaceLosingStore(SqlRunStore):
    """A real store on which, the first time a run comes with a key, another writer (as
    another replica would, between the service's lookup of the key and its insert)
    stores a run of its own under the same key first."""

    rival: str | None = None

    def insert_run(
        self,
        run: Run,
        then: Sequence[StoreWrite] = (),
        key: IdempotencyKey | None = None,
        key_live_since: datetime | None = None,
    ) -> Run:
        if key is not None and self.rival is None:
            rival = replace(run, run_id=str(uuid.uuid4()), save_version="")
            self.rival = super().insert_run(rival, key=key, key_live_since=key_live_since).run_id
        return super().insert_run(run, then, key, key_live_since)


class PlanEveryRun:
    """The ProjectInspector port: every request is valid and touches nothing."""

    env = None
    kedro_version = "1.7.0"
    project_commit = None

    def plan(self, spec: RunSpec) -> RunPlan:
        return RunPlan(nodes=("return_one",), footprint=Footprint())


async def _submit_losing_the_race(project: Path, store_url: str) -> tuple[str, str, bool]:
    store = RaceLosingStore(store_url)
    service = RunService.local(
        store,
        PlanEveryRun(),  # type: ignore[arg-type]
        ProcessWorkerPool(WorkerConfig(ProjectLocation(project)), size=1),
        cancel_grace_seconds=5,
        hooks=create_plugin_manager([], entry_points=False),  # type: ignore[arg-type]
    )
    await service.start()
    try:
        key = IdempotencyKey("anonymous", "raced", "0" * 64)
        spec = RunSpec(pipeline_names=("noop",))
        view, replayed = await service.submit_once(spec, str(uuid.uuid4()), key, caller=ANONYMOUS)
        assert store.rival is not None
        return view.run.run_id, store.rival, replayed
    finally:
        await service.stop(drain_seconds=1)
        store.close()


def test_a_key_another_process_stored_first_replays_that_run(project: Path, store_url: str) -> None:
    answered, rival, replayed = asyncio.run(_submit_losing_the_race(project, store_url))
    assert (answered, replayed) == (rival, True)
    store = SqlRunStore(store_url)
    try:
        assert [run.run_id for run in store.list_runs([], None, None, 10).runs] == [rival]
    finally:
        store.close()

"""Correct under concurrency: the acceptance checks Kedro's own server fails."""

from __future__ import annotations

import itertools
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path

import httpx
from conftest import ServiceProcess, ledger

DEADLINE = 120


def _submit_all(
    service: ServiceProcess, bodies: list[dict[str, object]], concurrency: int
) -> list[str]:
    def submit(body: dict[str, object]) -> str:
        with httpx.Client(base_url=service.url, timeout=30) as client:
            response = client.post("/runs", json=body)
            assert response.status_code == 202, response.text
            return str(response.json()["run_id"])

    with ThreadPoolExecutor(concurrency) as pool:
        return list(pool.map(submit, bodies))


def test_100_runs_with_distinct_output_paths_each_write_their_own_value(
    service: ServiceProcess,
) -> None:
    tenants = [f"tenant{i:03d}" for i in range(100)]
    bodies: list[dict[str, object]] = [
        {"pipeline_names": ["tenant"], "params": {"tenant": t}} for t in tenants
    ]
    run_ids = _submit_all(service, bodies, concurrency=16)
    assert len(set(run_ids)) == 100
    runs = [service.wait(run_id, timeout=DEADLINE) for run_id in run_ids]
    assert [run["status"] for run in runs] == ["succeeded"] * 100
    for tenant in tenants:
        out = service.project / "data" / "tenants" / tenant / "out.txt"
        assert out.read_text() == f"tenant={tenant}"
    save_versions = [run["save_version"] for run in runs]
    assert len(set(save_versions)) == 100


def _final_output(project: Path, save_version: str) -> str:
    return (project / "data" / "03_primary" / "final.txt" / save_version / "final.txt").read_text()


def test_16_concurrent_multi_stage_runs_sharing_intermediate_files_match_sequential_runs(
    service: ServiceProcess,
) -> None:
    tokens = [f"tok{i:02d}" for i in range(16)]
    # The finish node sleeps after reading the shared intermediate file, so an
    # overlapping run would overwrite it under a run that is still going.
    bodies: list[dict[str, object]] = [
        {"pipeline_names": ["stages"], "params": {"token": t, "delay": 0.05}} for t in tokens
    ]
    run_ids = _submit_all(service, bodies, concurrency=16)
    concurrent = [service.wait(run_id, timeout=DEADLINE) for run_id in run_ids]
    assert [run["status"] for run in concurrent] == ["succeeded"] * 16

    sequential = []
    for body in bodies:
        run = service.wait(service.submit(**body)["run_id"], timeout=DEADLINE)
        assert run["status"] == "succeeded"
        sequential.append(_final_output(service.project, run["save_version"]))
    outputs = [_final_output(service.project, run["save_version"]) for run in concurrent]
    assert outputs == sequential
    assert all(f"{token.upper()}:ALPHA" in out for token, out in zip(tokens, outputs, strict=True))
    # Conflicting runs never overlapped, and kept submission order.
    spans = sorted(
        (
            datetime.fromisoformat(r["timestamps"]["started_at"]),
            datetime.fromisoformat(r["timestamps"]["finished_at"]),
            r["save_version"],
        )
        for r in concurrent
    )
    for (_, end, first), (start, _, second) in itertools.pairwise(spans):
        assert end <= start
        assert first < second


def test_runs_that_touch_different_files_run_in_parallel(service: ServiceProcess) -> None:
    service.wait_for_workers(2)
    bodies: list[dict[str, object]] = [
        {"pipeline_names": ["tenant"], "params": {"tenant": f"par{i}", "delay": 1.0}}
        for i in range(2)
    ]
    runs = [service.wait(run_id) for run_id in _submit_all(service, bodies, concurrency=2)]
    first, second = (
        (
            datetime.fromisoformat(r["timestamps"]["started_at"]),
            datetime.fromisoformat(r["timestamps"]["finished_at"]),
        )
        for r in runs
    )
    assert first[0] < second[1]
    assert second[0] < first[1]


def test_a_run_shows_which_runs_it_waits_for(service: ServiceProcess) -> None:
    blocker = service.submit(pipeline_names=["tenant"], params={"tenant": "wait", "delay": 1.0})
    service.wait(blocker["run_id"], {"running"})
    waiter = service.submit(pipeline_names=["tenant"], params={"tenant": "wait"})
    assert waiter["waiting_for"] == [blocker["run_id"]]
    assert service.get(waiter["run_id"])["status"] == "queued"
    assert service.wait(waiter["run_id"])["status"] == "succeeded"
    assert service.get(waiter["run_id"])["waiting_for"] == []


def test_unpinned_load_after_five_sequential_versioned_runs_returns_the_fifth(
    service: ServiceProcess,
) -> None:
    versions = []
    for i in range(5):
        run = service.wait(
            service.submit(pipeline_names=["versioned"], params={"payload": f"payload-{i}"})[
                "run_id"
            ]
        )
        assert run["status"] == "succeeded"
        versions.append(run["save_version"])
    assert versions == sorted(versions)
    assert len(set(versions)) == 5
    # Kedro's own "latest": the newest version directory, sorted as text.
    from kedro.io.core import Version
    from kedro_datasets.text import TextDataset

    dataset = TextDataset(
        filepath=str(service.project / "data/06_models/payload.txt"), version=Version(None, None)
    )
    assert dataset.load() == "payload-4"
    assert all(f"{v} echo_payload" in ledger(service.project) for v in versions)

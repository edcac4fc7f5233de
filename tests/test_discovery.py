"""Discovery and planning: what a caller can run, without reading the project."""

from __future__ import annotations

from pathlib import Path

from conftest import ServiceProcess


def test_pipelines_list_every_registered_pipeline(service: ServiceProcess) -> None:
    pipelines = {p["name"]: p for p in service.client.get("/pipelines").json()}
    assert {"__default__", "stages", "noop", "slow", "reporting", "tenant"} <= set(pipelines)
    assert pipelines["slow"] == {
        "name": "slow",
        "node_count": 4,
        "tags": ["slow"],
        "namespaces": [],
    }
    assert pipelines["reporting"]["namespaces"] == ["reporting"]


def test_a_pipeline_is_described_in_execution_order_with_parameter_defaults(
    service: ServiceProcess,
) -> None:
    body = service.client.get("/pipelines/stages").json()
    assert [n["name"] for n in body["nodes"]] == ["prepare", "pause", "finish"]
    prepare = body["nodes"][0]
    assert prepare == {
        "name": "prepare",
        "function": "kr_testproject.nodes.prepare",
        "inputs": ["names", "params:token"],
        "outputs": ["stage_intermediate"],
        "tags": ["stage"],
        "namespace": None,
    }
    assert body["inputs"] == ["names"]
    assert body["outputs"] == ["stage_final"]
    assert body["parameters"] == {"delay": 0.0, "token": "base"}
    slow = service.client.get("/pipelines/slow").json()
    assert slow["parameters"] == {"slow.seconds": 0.2}


def test_an_unknown_pipeline_is_a_404_with_suggestions(service: ServiceProcess) -> None:
    response = service.client.get("/pipelines/stagse")
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"
    assert "stages" in response.json()["detail"]


def test_datasets_have_type_versioning_and_redacted_paths(service: ServiceProcess) -> None:
    datasets = {d["name"]: d for d in service.client.get("/datasets").json()}
    assert datasets["payload"]["versioned"] is True
    assert datasets["payload"]["type"] == "text.TextDataset"
    assert datasets["stage_intermediate"]["versioned"] is False
    assert datasets["names"]["filepath"].endswith("data/01_raw/names.txt")
    assert all("{" not in name for name in datasets)  # factory patterns are not entries


def test_plan_says_what_a_run_would_do_without_running_it(service: ServiceProcess) -> None:
    runs_before = service.client.get("/runs", params={"limit": 200}).json()["items"]
    response = service.client.post(
        "/runs/plan", json={"pipeline_names": ["stages"], "params": {"token": "plan"}}
    )
    assert response.status_code == 200
    plan = response.json()
    assert plan["nodes"] == ["prepare", "pause", "finish"]
    assert plan["inputs"] == [{"name": "names", "exists": True}]
    assert plan["outputs"] == ["stage_final", "stage_intermediate"]
    assert plan["parameters"] == ["params:delay", "params:token"]
    assert plan["waiting_for"] == []
    runs_after = service.client.get("/runs", params={"limit": 200}).json()["items"]
    assert len(runs_after) == len(runs_before)  # nothing was submitted


def test_plan_reports_conflicts_with_runs_in_flight(service: ServiceProcess) -> None:
    blocker = service.submit(pipeline_names=["tenant"], params={"tenant": "plan", "delay": 1.0})
    service.wait(blocker["run_id"], {"running"})
    plan = service.client.post(
        "/runs/plan", json={"pipeline_names": ["tenant"], "params": {"tenant": "plan"}}
    ).json()
    assert plan["waiting_for"] == [blocker["run_id"]]
    other = service.client.post(
        "/runs/plan", json={"pipeline_names": ["tenant"], "params": {"tenant": "elsewhere"}}
    ).json()
    assert other["waiting_for"] == []
    service.wait(blocker["run_id"])


def test_plan_rejects_what_submit_rejects(service: ServiceProcess) -> None:
    for body in ({"pipeline_names": ["nope"]}, {"params": {"x": "${y}"}}, {"extra": 1}):
        planned = service.client.post("/runs/plan", json=body)
        submitted = service.client.post("/runs", json=body)
        assert planned.status_code == submitted.status_code == 422
        assert planned.headers["content-type"] == "application/problem+json"
        assert planned.json()["errors"] == submitted.json()["errors"]


def test_plan_marks_inputs_that_do_not_exist_yet(service: ServiceProcess) -> None:
    (service.project / "data" / "02_intermediate" / "stage.txt").unlink(missing_ok=True)
    plan = service.client.post(
        "/runs/plan", json={"pipeline_names": ["stages"], "from_nodes": ["pause"]}
    ).json()
    assert plan["nodes"] == ["pause", "finish"]
    assert plan["inputs"] == [{"name": "stage_intermediate", "exists": False}]
    assert not (service.project / "data" / "02_intermediate" / "stage.txt").exists()


def test_readiness_is_a_503_problem_until_a_worker_is_ready(project: Path) -> None:
    service = ServiceProcess(project, workers=1, env={"KR_TEST_WORKER_START_DELAY": "4"})
    service.start(ready=False)
    try:
        response = service.client.get("/readyz")
        assert response.status_code == 503
        assert response.headers["content-type"] == "application/problem+json"
        assert int(response.headers["retry-after"]) > 0
        assert service.client.get("/healthz").json() == {"status": "ok"}
        service.wait_for_workers(1)
        assert service.client.get("/readyz").json()["workers_ready"] == 1
    finally:
        service.stop()


def test_dataset_paths_never_show_credentials() -> None:
    from app.kedro_bridge.discovery import datasets

    listed = datasets(
        {
            "remote": {"type": "pandas.CSVDataset", "filepath": "s3://AKIA:hunter2@bucket/x.csv"},
            "{name}_pattern": {"type": "pandas.CSVDataset", "filepath": "{name}.csv"},
        }
    )
    assert [d.name for d in listed] == ["remote"]
    assert listed[0].filepath is not None
    assert "hunter2" not in listed[0].filepath

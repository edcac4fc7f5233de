"""POST /runs/plan with only_missing_outputs names the nodes the run then executes:
Kedro's runner skips nodes whose persisted outputs exist, and the plan agrees."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from conftest import ServiceProcess


def _planned(service: ServiceProcess, **body: Any) -> list[str]:
    response = service.client.post("/runs/plan", json={"pipeline_names": ["stages"], **body})
    assert response.status_code == 200, response.text
    return list(response.json()["nodes"])


def _executed(service: ServiceProcess, **body: Any) -> list[str]:
    run_id = service.submit(pipeline_names=["stages"], **body)["run_id"]
    assert service.wait(run_id)["status"] == "succeeded"
    return [event["node"] for event in service.events(run_id) if event["type"] == "node_started"]


# Appended to the project copy: an output this process cannot check (no s3fs here, and
# real credentials would stay in the workers anyway), and a pipeline writing it.
_REMOTE_CATALOG = """
remote_out:
  type: text.TextDataset
  filepath: s3://kedro-runs-test/remote_out.txt
"""
_REMOTE_REGISTRY = """

_project_pipelines = register_pipelines


def register_pipelines() -> dict[str, Pipeline]:
    remote = Pipeline([node(nodes.return_one, None, "remote_out", name="write_remote")])
    return {**_project_pipelines(), "remote": remote}
"""


def test_an_output_that_cannot_be_checked_counts_as_missing(project: Path) -> None:
    catalog = project / "conf" / "base" / "catalog.yml"
    catalog.write_text(catalog.read_text() + _REMOTE_CATALOG)
    registry = project / "src" / "kr_testproject" / "pipeline_registry.py"
    registry.write_text(registry.read_text() + _REMOTE_REGISTRY)
    service = ServiceProcess(project, workers=1).start()
    try:
        response = service.client.post(
            "/runs/plan", json={"pipeline_names": ["remote"], "only_missing_outputs": True}
        )
        assert response.status_code == 200, response.text
        assert response.json()["nodes"] == ["write_remote"]
    finally:
        service.stop()


def test_the_plan_skips_what_the_run_skips(project: Path) -> None:
    service = ServiceProcess(project, workers=1).start()
    try:
        everything = ["prepare", "pause", "finish"]
        missing_only = {"only_missing_outputs": True}
        # Nothing written yet: every node would run.
        assert _planned(service, **missing_only) == everything
        assert _executed(service) == everything
        # All persisted outputs exist: the run skips every node, and so does the plan.
        assert _planned(service, **missing_only) == []
        assert _executed(service, **missing_only) == []
        assert _planned(service) == everything  # without the flag, nothing is skipped
        # The intermediate file is gone: only its producer runs (its consumers' own
        # outputs still exist, so Kedro does not rerun them).
        (project / "data" / "02_intermediate" / "stage.txt").unlink()
        assert _planned(service, **missing_only) == ["prepare"]
        assert _executed(service, **missing_only) == ["prepare"]
        # The versioned final output is gone: its producer runs, and so does the node
        # before it, whose output it needs lives only in memory.
        shutil.rmtree(project / "data" / "03_primary" / "final.txt")
        plan = service.client.post(
            "/runs/plan", json={"pipeline_names": ["stages"], **missing_only}
        ).json()
        assert plan["nodes"] == ["pause", "finish"]
        # What those nodes need that no planned node makes: the file that exists now.
        assert {"name": "stage_intermediate", "exists": True} in plan["inputs"]
        assert _executed(service, **missing_only) == ["pause", "finish"]
    finally:
        service.stop()

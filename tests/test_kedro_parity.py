"""Drop-in parity with Kedro's own server: every path, request field and response
field of its OpenAPI document (kept as a fixture from the installed kedro) is served
and produced the same way."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from conftest import ServiceProcess

from app.__main__ import openapi_document

KEDRO = json.loads((Path(__file__).parent / "fixtures" / "kedro_server_openapi.json").read_text())
OURS = json.loads(openapi_document())
# Fields whose description says what the service does instead (the same type and default).
DESCRIBED_OUR_WAY = {("RunRequest", "runner")}


def test_every_kedro_path_and_method_is_served() -> None:
    for path, operations in KEDRO["paths"].items():
        for method in operations:
            assert method in OURS["paths"].get(path, {}), f"{method.upper()} {path}"


@pytest.mark.parametrize("name", sorted(KEDRO["components"]["schemas"]))
def test_every_kedro_schema_is_the_same(name: str) -> None:
    ours = OURS["components"]["schemas"].get(name)
    assert ours is not None, name
    theirs = KEDRO["components"]["schemas"][name]
    assert _described_as_kedro(name, ours["properties"]) == _described_as_kedro(
        name, theirs["properties"]
    )
    assert ours.get("required") == KEDRO["components"]["schemas"][name].get("required")
    assert ours.get("additionalProperties") == KEDRO["components"]["schemas"][name].get(
        "additionalProperties"
    )


def test_kedro_request_and_response_bodies_are_wired_the_same() -> None:
    for path, operations in KEDRO["paths"].items():
        for method, operation in operations.items():
            ours = OURS["paths"][path][method]
            assert ours.get("requestBody", {}).get("content") == operation.get(
                "requestBody", {}
            ).get("content"), path
            # POST /run's 422 is Kedro's too; elsewhere 422 is problem+json (README).
            for status in ("200", "422") if path == "/run" else ("200",):
                assert _untitled(ours["responses"][status]) == _untitled(
                    operation["responses"][status]
                ), (path, status)
            # Kedro's parameters, in order; any of ours beyond them (Idempotency-Key on
            # POST /run) must be optional, so Kedro's clients work unchanged.
            theirs = [p["name"] for p in operation.get("parameters", [])]
            ours_params = ours.get("parameters", [])
            assert [p["name"] for p in ours_params if p["name"] in theirs] == theirs, path
            extra = [p for p in ours_params if p["name"] not in theirs]
            assert not [p["name"] for p in extra if p.get("required")], path


def _described_as_kedro(schema: str, properties: dict[str, Any]) -> dict[str, Any]:
    return {
        field: {k: v for k, v in spec.items() if k != "description"}
        if (schema, field) in DESCRIBED_OUR_WAY
        else spec
        for field, spec in properties.items()
    }


def test_the_runner_is_documented_as_the_allowlist_it_is() -> None:
    for schema in ("RunRequest", "RunCreate"):
        runner = OURS["components"]["schemas"][schema]["properties"]["runner"]
        assert "importable" not in runner["description"]
        assert "kedro.runner.ThreadRunner" in runner["description"]


def _untitled(response: dict[str, Any]) -> dict[str, Any]:
    """A response without its schema's title (FastAPI derives it from the operation id)."""
    content = json.loads(json.dumps(response["content"]))
    for media in content.values():
        media["schema"].pop("title", None)
    return content


def test_health_answers_as_kedro_does(service: ServiceProcess) -> None:
    body = service.client.get("/health").json()
    assert body == {"status": "healthy", "kedro_version": body["kedro_version"]}
    assert body["kedro_version"].startswith("1.")


def test_snapshot_answers_as_kedro_does(service: ServiceProcess) -> None:
    body = service.client.get("/snapshot", params={"params": "tenant=snap"}).json()
    assert body["status"] == "success"
    assert set(body) == {"status", "metadata", "pipelines", "datasets", "parameters"}
    assert body["metadata"]["package_name"] == "kr_testproject"
    assert "stages" in [p["name"] for p in body["pipelines"]]
    assert "tenant" in body["parameters"]
    assert body["datasets"]["tenant_out"]["filepath"].endswith("snap/out.txt")
    bad = service.client.get("/snapshot", params={"params": "x=${oc.env:HOME}"}).json()
    assert bad["status"] == "failure"
    assert set(bad["error"]) == {"type", "message"}


def _every_kedro_field() -> dict[str, Any]:
    return {
        "pipeline_names": ["stages"],
        "tags": ["stage"],
        "node_names": ["prepare", "pause", "finish"],
        "from_nodes": ["prepare"],
        "to_nodes": ["finish"],
        "from_inputs": ["names"],
        "to_outputs": ["stage_final"],
        "namespaces": None,
        "load_versions": {},
        "runner": "ThreadRunner",
        "is_async": True,
        "only_missing_outputs": False,
        "params": {"token": "parity"},
    }


def test_run_accepts_every_kedro_field_and_shows_up_in_runs(service: ServiceProcess) -> None:
    response = service.client.post("/run", json=_every_kedro_field())
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"status", "run_id", "duration_ms"}
    assert body["status"] == "success"
    assert body["duration_ms"] > 0
    run = service.get(body["run_id"])  # the same run, in the service's own API
    assert run["status"] == "succeeded"
    assert run["save_version"] == body["run_id"]  # Kedro's run id is the save version
    assert run["request"]["runner"] == "ThreadRunner"
    # A param named `token` is a secret: shown masked, and where (README, Secrets).
    assert run["request"]["params"] == {"token": "<redacted>"}
    assert run["request"]["params_masked"] == ["/token"]


@pytest.mark.parametrize(
    ("body", "error_type"),
    [
        ({"pipeline_names": ["fail"], "params": {"message": "boom"}}, "ValueError"),
        ({"pipeline_names": ["stagez"]}, "ValueError"),
        ({"runner": "kedro.runner.ParallelRunner"}, "ValueError"),
    ],
)
def test_run_failures_answer_as_kedro_does(
    service: ServiceProcess, body: dict[str, Any], error_type: str
) -> None:
    response = service.client.post("/run", json=body)
    assert response.status_code == 200
    failure = response.json()
    assert set(failure) == {"status", "run_id", "duration_ms", "error"}
    assert failure["status"] == "failure"
    assert failure["error"]["type"] == error_type


def test_run_answers_kedros_run_id_the_save_version_of_its_outputs(
    service: ServiceProcess,
) -> None:
    """A Kedro client finds a run's versioned outputs by the `run_id` it was answered;
    the service's own endpoints take that id too, and answer with the run's uuid."""
    body = service.client.post("/run", json={"pipeline_names": ["versioned"]}).json()
    assert body["status"] == "success", body
    kedro_run_id = body["run_id"]
    saved = service.project / "data" / "06_models" / "payload.txt" / kedro_run_id / "payload.txt"
    assert saved.is_file()  # where Kedro's own server would have saved it

    run = service.get(kedro_run_id)
    assert (run["save_version"], run["status"]) == (kedro_run_id, "succeeded")
    assert run["run_id"] != kedro_run_id  # the uuid, listed by GET /runs under it
    by_uuid = service.get(run["run_id"])
    assert by_uuid["save_version"] == kedro_run_id
    for suffix in ("/events", "/logs", "/outputs"):
        by_version = service.client.get(f"/runs/{kedro_run_id}{suffix}")
        assert by_version.status_code == 200, (suffix, by_version.text)
        assert by_version.json() == service.client.get(f"/runs/{run['run_id']}{suffix}").json()
    outputs = service.client.get(f"/runs/{kedro_run_id}/outputs").json()
    assert [d["save_version"] for d in outputs["saved"] if d["name"] == "payload"] == [kedro_run_id]
    assert service.client.post(f"/runs/{kedro_run_id}/cancel").status_code == 409  # it ended
    unknown = service.client.get("/runs/2001-01-01T00.00.00.000Z")
    assert unknown.status_code == 404
    assert "2001-01-01T00.00.00.000Z" in unknown.json()["detail"]


def test_a_retried_run_is_found_by_its_first_and_its_latest_save_version(
    service: ServiceProcess,
) -> None:
    submitted = service.submit(
        pipeline_names=["flaky"], params={"flaky": {"token": "kedro-id"}}, max_attempts=2
    )
    run = service.wait(submitted["run_id"])
    assert (run["status"], run["attempts"]) == ("succeeded", 2)
    assert run["save_version"] != submitted["save_version"]  # the retry's fresh version
    for save_version in (submitted["save_version"], run["save_version"]):
        assert service.get(save_version)["run_id"] == run["run_id"]


def test_kedro_habits_are_accepted_on_runs(service: ServiceProcess) -> None:
    """Full runner names and dotted params keys, as Kedro's server and CLI take them;
    stored as the short name and the nesting, which is what runs."""
    accepted = service.submit(
        pipeline_names=["chatty"],
        runner="kedro.runner.ThreadRunner",
        params={"chatty.count": 2, "chatty": {"seconds": 0.0}},
    )
    assert accepted["request"]["runner"] == "ThreadRunner"
    assert accepted["request"]["params"] == {"chatty": {"count": 2, "seconds": 0.0}}
    assert service.wait(accepted["run_id"])["status"] == "succeeded"
    outputs = service.client.get(f"/runs/{accepted['run_id']}/outputs").json()
    assert [free["value"] for free in outputs["free"]] == [2]  # the project's default is 5


def test_kedro_habits_are_accepted_on_run(service: ServiceProcess) -> None:
    response = service.client.post(
        "/run",
        json={
            "pipeline_names": ["chatty"],
            "runner": "kedro.runner.SequentialRunner",
            "params": {"chatty.count": 3, "chatty.seconds": 0.0},
        },
    )
    assert response.status_code == 200
    assert response.json()["status"] == "success", response.text
    run = service.get(response.json()["run_id"])
    assert run["request"]["runner"] == "SequentialRunner"
    assert run["request"]["params"] == {"chatty": {"count": 3, "seconds": 0.0}}


def test_run_refuses_extra_fields_like_kedro(service: ServiceProcess) -> None:
    response = service.client.post("/run", json={"env": "prod"})
    assert response.status_code == 422


def test_the_fixture_is_the_installed_kedro_servers_document(tmp_path: Path) -> None:
    """When kedro is upgraded and its server changes, refresh the fixture (and parity)."""
    output = tmp_path / "kedro_openapi.json"
    script = (
        "import json, sys\n"
        "from kedro.server.http_server import create_http_server\n"
        "app = create_http_server(project_path=sys.argv[1])\n"
        "open(sys.argv[2], 'w').write(json.dumps(app.openapi()))\n"
    )
    subprocess.run(
        [sys.executable, "-c", script, str(Path(__file__).parent / "project"), str(output)],
        capture_output=True,
        timeout=120,
        check=True,
        env={**os.environ, "KEDRO_DISABLE_TELEMETRY": "1"},
    )
    assert json.loads(output.read_text()) == KEDRO

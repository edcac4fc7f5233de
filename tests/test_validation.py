"""Bad input: every case gets a problem+json answer before any worker sees it."""

from __future__ import annotations

import json
from typing import Any

import pytest
from conftest import ServiceProcess


def _problem(service: ServiceProcess, body: Any, status: int = 422) -> dict[str, Any]:
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    response = service.client.post(
        "/runs", content=content, headers={"content-type": "application/json"}
    )
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    problem = dict(response.json())
    assert problem["status"] == status
    assert problem["type"].startswith("https://")
    return problem


def _messages(problem: dict[str, Any]) -> str:
    return " ".join(e["msg"] for e in problem.get("errors", []))


def test_unknown_pipeline_suggests_close_names(service: ServiceProcess) -> None:
    problem = _problem(service, {"pipeline_names": ["stagse"]})
    assert problem["errors"][0]["loc"] == ["body", "pipeline_names", 0]
    assert "stages" in problem["errors"][0]["msg"]
    assert "Did you mean" in problem["errors"][0]["msg"]


@pytest.mark.parametrize(
    ("body", "field", "needle"),
    [
        ({"pipeline_names": ["stages"], "node_names": ["prepar"]}, "node_names", "prepare"),
        ({"pipeline_names": ["stages"], "from_nodes": ["nope"]}, "from_nodes", "nope"),
        ({"pipeline_names": ["stages"], "to_nodes": ["nope"]}, "to_nodes", "nope"),
        ({"pipeline_names": ["stages"], "tags": ["stag"]}, "tags", "stage"),
        ({"pipeline_names": ["reporting"], "namespaces": ["report"]}, "namespaces", "reporting"),
        ({"pipeline_names": ["stages"], "from_inputs": ["nams"]}, "from_inputs", "names"),
        ({"pipeline_names": ["stages"], "to_outputs": ["nope"]}, "to_outputs", "nope"),
        (
            {"pipeline_names": ["versioned"], "load_versions": {"paylod": "x"}},
            "load_versions",
            "payload",
        ),
        (
            {"pipeline_names": ["stages"], "load_versions": {"names": "x"}},
            "load_versions",
            "not versioned",
        ),
        (
            {"pipeline_names": ["versioned"], "load_versions": {"payload": ".."}},
            "load_versions",
            "path component",
        ),
    ],
)
def test_unknown_names_in_filters(
    service: ServiceProcess, body: dict[str, Any], field: str, needle: str
) -> None:
    problem = _problem(service, body)
    assert problem["errors"][0]["loc"][:2] == ["body", field]
    assert needle in problem["errors"][0]["msg"]


def test_filters_that_select_no_node(service: ServiceProcess) -> None:
    problem = _problem(
        service, {"pipeline_names": ["stages"], "node_names": ["prepare"], "from_nodes": ["pause"]}
    )
    assert "select no node" in problem["detail"]


@pytest.mark.parametrize(
    "runner",
    [
        "ParallelRunner",
        "kedro.runner.ParallelRunner",
        "kedro.runner.sequential_runner.SequentialRunner",
        "os.system",
        "builtins.eval",
    ],
)
def test_runner_outside_the_allowlist(service: ServiceProcess, runner: str) -> None:
    problem = _problem(service, {"pipeline_names": ["noop"], "runner": runner})
    assert problem["errors"][0]["loc"] == ["body", "runner"]


def _nested(depth: int) -> dict[str, Any]:
    value: dict[str, Any] = {"leaf": 1}
    for _ in range(depth):
        value = {"k": value}
    return value


@pytest.mark.parametrize(
    ("params", "needle"),
    [
        ({"token": "${oc.env:HOME}"}, "${"),
        ({"${x}": 1}, "${"),
        ({"a": {"b": ["ok", "${p}"]}}, "${"),
        (_nested(17), "deeper than 16"),
        ({f"k{i}": i for i in range(1001)}, "1000 keys"),
        ({"big": "x" * (64 * 1024 + 1)}, "longer than"),
        ({"nul": "a\x00b"}, "NUL"),
        ({"a": 1, "a.b": 2}, "params.a - given twice"),
        ({"a..b": 1}, "non-empty names"),
    ],
)
def test_params_limits(service: ServiceProcess, params: dict[str, Any], needle: str) -> None:
    problem = _problem(service, {"pipeline_names": ["noop"], "params": params})
    assert problem["errors"][0]["loc"] == ["body", "params"]
    assert needle in _messages(problem)


@pytest.mark.parametrize("literal", [b"NaN", b"Infinity", b"-Infinity"])
def test_non_finite_numbers_in_params(service: ServiceProcess, literal: bytes) -> None:
    problem = _problem(service, b'{"pipeline_names": ["noop"], "params": {"x": ' + literal + b"}}")
    assert "NaN and Infinity" in _messages(problem)


def test_lone_surrogate_in_params(service: ServiceProcess) -> None:
    problem = _problem(service, b'{"params": {"x": "\\ud800"}}')
    assert "surrogate" in _messages(problem)


@pytest.mark.parametrize(
    "body",
    [
        {"pipeline_names": ["noop"], "conf_source": "/etc"},  # extra field
        {"pipeline_names": "noop"},  # not a list
        {"only_missing_outputs": 0},  # no lax bool coercion
        {"pipeline_names": [""]},
        {"load_versions": {"payload": 5}},
    ],
)
def test_malformed_fields(service: ServiceProcess, body: dict[str, Any]) -> None:
    _problem(service, body)


def test_malformed_json_is_a_problem(service: ServiceProcess) -> None:
    _problem(service, b'{"pipeline_names": [')


def test_body_over_one_mib_is_413(service: ServiceProcess) -> None:
    body = json.dumps({"params": {"blob": "x" * (1024 * 1024)}}).encode()
    problem = _problem(service, body, status=413)
    assert "larger than" in problem["detail"]


def test_chunked_body_over_one_mib_is_413(service: ServiceProcess) -> None:
    def chunks() -> Any:
        yield b'{"params": {"blob": "'
        for _ in range(80):
            yield b"x" * 16384
        yield b'"}}'

    response = service.client.post(
        "/runs", content=chunks(), headers={"content-type": "application/json"}
    )
    assert response.status_code == 413
    assert response.headers["content-type"] == "application/problem+json"


def test_rejected_requests_leave_no_run(service: ServiceProcess) -> None:
    before = service.client.get("/runs", params={"limit": 200}).json()["items"]
    _problem(service, {"pipeline_names": ["nope"]})
    _problem(service, {"params": {"x": "${y}"}})
    after = service.client.get("/runs", params={"limit": 200}).json()["items"]
    assert [r["run_id"] for r in after][: len(before)] == [r["run_id"] for r in before][
        : len(after)
    ]
    assert len(after) == len(before)


def test_every_problem_is_documented_in_openapi(service: ServiceProcess) -> None:
    spec = service.client.get("/openapi.json").json()
    create = spec["paths"]["/runs"]["post"]
    assert create["operationId"] == "createRun"
    for status in ("413", "422"):
        content = create["responses"][status]["content"]
        assert "application/problem+json" in content
    assert "404" in spec["paths"]["/runs/{run_id}"]["get"]["responses"]
    assert "409" in spec["paths"]["/runs/{run_id}/cancel"]["post"]["responses"]
    assert "Problem" in spec["components"]["schemas"]


@pytest.mark.parametrize(
    "tenant", ["../../../../etc", "x/../../../outside", "../../src/kr_testproject"]
)
def test_params_may_not_move_a_dataset_outside_the_data_root(
    service: ServiceProcess, tenant: str
) -> None:
    problem = _problem(service, {"pipeline_names": ["tenant"], "params": {"tenant": tenant}})
    assert problem["errors"][0]["type"] == "path_outside_data_root"
    assert "tenant_out" in problem["errors"][0]["msg"]


def test_params_may_not_choose_a_dataset_type_even_indirectly(service: ServiceProcess) -> None:
    problem = _problem(
        service, {"pipeline_names": ["typed"], "params": {"dtype": "pickle.PickleDataset"}}
    )
    assert problem["errors"][0]["type"] == "type_selection"
    run = service.wait(
        service.submit(pipeline_names=["typed"], params={"payload": "fine"})["run_id"]
    )
    assert run["status"] == "succeeded"
    assert (service.project / "data" / "typed.txt").read_text() == "fine"

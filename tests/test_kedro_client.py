"""A client generated from Kedro's own server document (the fixture) drives POST /run:
its successes, failures and 422s parse as Kedro's models, so it works unchanged."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import ServiceProcess
from test_generated_client import Generated, generate_client

KEDRO_SPEC = Path(__file__).parent / "fixtures" / "kedro_server_openapi.json"
PACKAGE = "kedro_server_client"


@pytest.fixture(scope="module")
def kedro_generated(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Generated]:
    # Kedro's document is not ours to keep warning-free: warnings only skip parts of it.
    root = tmp_path_factory.mktemp("kedro-client")
    yield from generate_client(root, KEDRO_SPEC, PACKAGE, fail_on_warning=False)


@pytest.fixture
def kedro_client(kedro_generated: Generated, service: ServiceProcess) -> Iterator[Any]:
    from kedro_server_client import Client

    with Client(base_url=service.url, timeout=httpx.Timeout(60)) as client:
        yield client


def _run(client: Any, **fields: Any) -> Any:
    from kedro_server_client.api.pipeline import run_pipeline_run_post
    from kedro_server_client.models import RunRequest, RunRequestParamsType0

    params = fields.pop("params", None)
    body = RunRequest(
        **fields,
        **({"params": RunRequestParamsType0.from_dict(params)} if params is not None else {}),
    )
    return run_pipeline_run_post.sync_detailed(client=client, body=body)


def test_kedros_client_reads_a_success(kedro_client: Any) -> None:
    from kedro_server_client.models import RunSuccess

    response = _run(kedro_client, pipeline_names=["noop"])
    assert response.status_code == 200, response.content
    assert isinstance(response.parsed, RunSuccess)


@pytest.mark.parametrize(
    ("fields", "loc", "needle"),
    [
        # Refused by Kedro's own request model: a schema error.
        ({"runner": "not a runner"}, ["body", "runner"], "dotted identifier"),
        # Refused by the service's limits on params.
        ({"params": {"token": "${oc.env:HOME}"}}, ["body", "params"], "interpolation"),
        ({"params": {"a": 1, "a.b": 2}}, ["body", "params"], "given twice"),
        # Refused by the service's own bounds, past Kedro's model.
        ({"pipeline_names": ["x" * 300]}, ["body", "pipeline_names", 0], "at most 255"),
    ],
)
def test_kedros_client_reads_a_422(
    kedro_client: Any, fields: dict[str, Any], loc: list[Any], needle: str
) -> None:
    from kedro_server_client.models import HTTPValidationError

    response = _run(kedro_client, **fields)
    assert response.status_code == 422, response.content
    assert response.headers["content-type"] == "application/json"
    parsed = response.parsed
    assert isinstance(parsed, HTTPValidationError), response.content
    assert parsed.detail, response.content
    problem = parsed.detail[0]
    assert problem.loc == loc
    assert needle in problem.msg
    assert problem.type_
    assert not problem.additional_properties  # no `input`: the request is never echoed


def test_kedros_client_reads_the_services_own_422(kedro_client: Any) -> None:
    """An Idempotency-Key reused with another body: the service's check, Kedro's shape."""
    from kedro_server_client.models import HTTPValidationError

    with kedro_client.with_headers({"Idempotency-Key": "kedro-client-reuse"}) as keyed:
        assert _run(keyed, pipeline_names=["noop"]).status_code == 200
        response = _run(keyed, pipeline_names=["noop"], tags=["other"])
    assert response.status_code == 422, response.content
    assert isinstance(response.parsed, HTTPValidationError), response.content
    assert response.parsed.detail[0].loc == ["header", "Idempotency-Key"]


def test_kedros_models_read_a_snapshot_422(kedro_client: Any) -> None:
    """Kedro's document declares its HTTPValidationError for /snapshot too. (The
    generated snapshot call itself is unusable: its query argument ``params`` shadows
    the generator's own local of that name, so it is called through the client's httpx.)"""
    from kedro_server_client.models import HTTPValidationError, SnapshotSuccess

    http = kedro_client.get_httpx_client()
    fine = http.get("/snapshot", params={"params": "tenant=snap"})
    assert fine.status_code == 200, fine.content
    assert SnapshotSuccess.from_dict(fine.json()).status == "success"
    response = http.get("/snapshot", params={"params": "x" * 3000})
    assert response.status_code == 422, response.content
    assert response.headers["content-type"] == "application/json"
    parsed = HTTPValidationError.from_dict(response.json())
    assert parsed.detail, response.content
    assert parsed.detail[0].loc == ["query", "params"]
    assert not parsed.detail[0].additional_properties  # the request is never echoed

"""The committed OpenAPI document is the app's: regenerate with `kedro-runs openapi`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from conftest import ServiceProcess

from app.__main__ import main, openapi_document

COMMITTED = Path(__file__).parents[1] / "openapi" / "openapi.json"


def test_committed_openapi_matches_the_app() -> None:
    assert COMMITTED.read_text(encoding="utf-8") == openapi_document(), (
        "openapi/openapi.json is stale: run `kedro-runs openapi` and commit the result"
    )


PROBES = {"getHealth", "getLiveness", "getReadiness"}


def _operations(document: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        operation["operationId"]: operation
        for operations in document["paths"].values()
        for operation in operations.values()
    }


def assert_keyed(document: dict[str, Any]) -> None:
    """Every operation but the probes requires the bearer key, and says it may answer 401."""
    assert document["components"]["securitySchemes"]["ApiKey"]["scheme"] == "bearer"
    for operation_id, operation in _operations(document).items():
        if operation_id in PROBES:
            assert "security" not in operation, operation_id
            assert "401" not in operation["responses"], operation_id
        else:
            assert operation.get("security") == [{"ApiKey": []}], operation_id
            assert "401" in operation["responses"], operation_id


def assert_keyless(document: dict[str, Any]) -> None:
    """No operation requires a key or answers 401, and no scheme is declared."""
    assert "securitySchemes" not in document["components"]
    for operation_id, operation in _operations(document).items():
        assert "security" not in operation, operation_id
        assert "401" not in operation["responses"], operation_id


def test_the_committed_document_is_a_keyed_deployments() -> None:
    assert_keyed(json.loads(COMMITTED.read_text(encoding="utf-8")))


def test_the_no_keys_document_requires_no_key() -> None:
    assert_keyless(json.loads(openapi_document(keys=False)))


def test_a_service_without_keys_serves_a_document_without_key_requirements(
    service: ServiceProcess,
) -> None:
    served = service.client.get("/openapi.json").json()
    assert_keyless(served)
    assert served["paths"].keys() == json.loads(openapi_document())["paths"].keys()


def test_the_cli_writes_either_document(tmp_path: Path) -> None:
    for flags, check in (([], assert_keyed), (["--no-keys"], assert_keyless)):
        output = tmp_path / "openapi.json"
        assert main(["openapi", "--output", str(output), *flags]) == 0
        check(json.loads(output.read_text(encoding="utf-8")))

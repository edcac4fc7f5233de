"""Caps everywhere: every parameter of every operation is bounded in the OpenAPI document,
and oversized values get a clean 4xx problem, never a 5xx."""

from __future__ import annotations

import contextlib
import json
import socket
import time
from pathlib import Path
from typing import Any

import pytest
from conftest import ServiceProcess

from app.__main__ import openapi_document

DOCUMENT = json.loads(openapi_document())
SCHEMAS = DOCUMENT["components"]["schemas"]
# Kedro's own RunRequest is served as Kedro publishes it (parity); POST /run validates
# it again as RunCreate, which is bounded (checked below).
KEDRO_SCHEMAS = {"RunRequest"}
# `params` is an open object bounded by its validator (depth, keys, sizes: limits.py).
VALIDATED_ELSEWHERE = {("RunCreate", "params")}


def _variants(schema: dict[str, Any]) -> list[dict[str, Any]]:
    if "$ref" in schema:
        return _variants(SCHEMAS[schema["$ref"].rsplit("/", 1)[-1]])
    if "anyOf" in schema:
        return [v for part in schema["anyOf"] for v in _variants(part)]
    return [schema]


def _unbounded(schema: dict[str, Any]) -> list[str]:
    """What in ``schema`` has no upper bound."""
    problems = []
    for variant in _variants(schema):
        kind = variant.get("type")
        if kind == "string" and "maxLength" not in variant and "enum" not in variant:
            problems.append("string without maxLength")
        elif kind == "array":
            if "maxItems" not in variant:
                problems.append("array without maxItems")
            problems += [f"items: {p}" for p in _unbounded(variant.get("items", {}))]
        elif kind in ("integer", "number") and "maximum" not in variant:
            problems.append(f"{kind} without maximum")
        elif kind == "object":
            extra = variant.get("additionalProperties")
            if isinstance(extra, dict):
                if "maxProperties" not in variant:
                    problems.append("map without maxProperties")
                problems += [f"values: {p}" for p in _unbounded(extra)]
    return problems


def _operations() -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (method, path, operation)
        for path, operations in DOCUMENT["paths"].items()
        for method, operation in operations.items()
    ]


@pytest.mark.parametrize(
    ("method", "path", "operation"),
    _operations(),
    ids=[f"{m} {p}" for m, p, _ in _operations()],
)
def test_every_parameter_is_bounded(method: str, path: str, operation: dict[str, Any]) -> None:
    for parameter in operation.get("parameters", []):
        where = f"{method.upper()} {path} {parameter['in']} {parameter['name']}"
        assert not _unbounded(parameter["schema"]), (where, _unbounded(parameter["schema"]))


def _request_bodies() -> list[str]:
    names = set()
    for _, _, operation in _operations():
        for media in operation.get("requestBody", {}).get("content", {}).values():
            names.add(media["schema"]["$ref"].rsplit("/", 1)[-1])
    return [*sorted(names - KEDRO_SCHEMAS), "RunCreate"]


@pytest.mark.parametrize("name", sorted(set(_request_bodies())))
def test_every_request_body_field_is_bounded(name: str) -> None:
    schema = SCHEMAS[name]
    assert schema.get("additionalProperties") is False, name
    for field, field_schema in schema["properties"].items():
        if (name, field) in VALIDATED_ELSEWHERE:
            assert "description" in field_schema
            continue
        assert not _unbounded(field_schema), (name, field, _unbounded(field_schema))


@pytest.mark.parametrize(
    ("path", "params"),
    [
        ("/runs", {"limit": 10**9}),
        ("/runs", {"limit": 201}),
        ("/runs", {"limit": -1}),
        ("/runs", {"status": ["queued"] * 7}),
        ("/runs", {"pipeline": "p" * 256}),
        ("/runs", {"cursor": "c" * 129}),
        ("/runs/x", {"wait": 61}),
        ("/runs/x", {"wait": "1e308"}),
        ("/runs/x/events", {"after": 10**30}),
        ("/runs/x/events", {"limit": 10**9}),
        ("/runs/x/logs", {"limit": 1001}),
        ("/runs/x/logs", {"level": "TRACE"}),
    ],
)
def test_out_of_range_queries_are_422(
    service: ServiceProcess, path: str, params: dict[str, Any]
) -> None:
    response = service.client.get(path, params=params)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"


def _raw_status(service: ServiceProcess, head: str) -> int:
    """Send ``head`` (a request without a body) as raw bytes; the reply's status."""
    with socket.create_connection(("127.0.0.1", service.port), timeout=10) as sock:
        with contextlib.suppress(OSError):  # it may close before reading it all: a refusal
            sock.sendall(head.encode())
        reply = b""
        while b"\r\n" not in reply:
            chunk = sock.recv(4096)
            if not chunk:
                break
            reply += chunk
    return int(reply.split()[1]) if reply.startswith(b"HTTP/1.1 ") else 400


def test_oversized_headers_and_paths_get_a_clean_4xx(service: ServiceProcess) -> None:
    many = "".join(f"X-H{i}: {'v' * 100}\r\n" for i in range(2000))  # ~220 KB
    statuses = {
        "40 KiB path segment": _raw_status(
            service, f"GET /runs/{'r' * 40 * 1024} HTTP/1.1\r\nHost: x\r\n\r\n"
        ),
        "100 KiB path segment": _raw_status(  # uvicorn's parser refuses it (400)
            service, f"GET /runs/{'r' * 100 * 1024} HTTP/1.1\r\nHost: x\r\n\r\n"
        ),
        "100 KiB header": _raw_status(
            service, f"GET /runs HTTP/1.1\r\nHost: x\r\nX-Big: {'h' * 100 * 1024}\r\n\r\n"
        ),
        "2,000 headers": _raw_status(service, f"GET /healthz HTTP/1.1\r\nHost: x\r\n{many}\r\n"),
        "100 KiB X-Request-ID": _raw_status(
            service,
            f"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Request-ID: {'i' * 100 * 1024}\r\n\r\n",
        ),
        "pipeline name": service.client.get("/pipelines/" + "p" * 256).status_code,
        "run id": service.client.get("/runs/" + "r" * 65).status_code,
        "last event id": service.client.get(
            "/runs/x/events", headers={"Last-Event-ID": "9" * 33}
        ).status_code,
        "idempotency key": service.client.post(
            "/runs", json={"pipeline_names": ["noop"]}, headers={"Idempotency-Key": "k" * 256}
        ).status_code,
        "snapshot params": _raw_status(
            service, f"GET /snapshot?params=a%3D{'x' * 16 * 1024} HTTP/1.1\r\nHost: x\r\n\r\n"
        ),
    }
    print("oversized:", statuses)
    assert all(400 <= status < 500 for status in statuses.values()), statuses
    assert statuses["40 KiB path segment"] == 414
    assert statuses["100 KiB header"] == statuses["2,000 headers"] == 431
    assert service.client.get("/healthz").status_code == 200  # a sane service afterwards


def test_a_long_but_parseable_request_id_is_replaced(service: ServiceProcess) -> None:
    response = service.client.get("/healthz", headers={"X-Request-ID": "i" * 129})
    assert response.status_code == 200
    assert response.headers["x-request-id"] != "i" * 129
    assert len(response.headers["x-request-id"]) <= 128


def test_a_slow_loris_body_gets_408_and_blocks_nobody(project: Path) -> None:
    service = ServiceProcess(project, workers=1, env={"KEDRO_RUNS_BODY_TIMEOUT_SECONDS": "1"})
    service.start()
    try:
        head = (
            "POST /runs HTTP/1.1\r\nHost: localhost\r\ncontent-type: application/json\r\n"
            "content-length: 100\r\n\r\n"
        )
        with socket.create_connection(("127.0.0.1", service.port), timeout=10) as sock:
            sock.sendall(head.encode() + b'{"pipeline_names"')
            started = time.monotonic()
            # Meanwhile the service answers others and runs their runs.
            run = service.submit(pipeline_names=["noop"])
            assert service.wait(run["run_id"])["status"] == "succeeded"
            for _ in range(20):  # a byte now and then, as a slow-loris client does
                with contextlib.suppress(OSError):
                    sock.sendall(b" ")
                time.sleep(0.1)
            reply = sock.recv(4096)
            waited = time.monotonic() - started
        print(f"slow body refused after {waited:.2f} s")
        assert reply.startswith(b"HTTP/1.1 408"), reply[:200]
        assert b"application/problem+json" in reply
        assert len(service.client.get("/runs").json()["items"]) == 1
    finally:
        service.stop()

"""Without API keys, only Host names a DNS-rebinding page cannot carry are served
(app/api/host_check.py); with keys, any Host is."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import ServiceProcess

from app.api.host_check import HostCheckMiddleware, host_name, is_rebinding_proof
from app.settings import Settings

SERVED = [
    "localhost",
    "localhost:8000",
    "LOCALHOST.",
    "app.localhost:3000",
    "127.0.0.1",
    "127.0.0.1:8000",
    "[::1]",
    "[::1]:8000",
    "10.1.2.3:8000",  # an address cannot be rebound; only a name can
    "kedro.internal:8000",  # listed in allowed_hosts below
]
REFUSED = [
    "evil.example",
    "evil.example:8000",
    "localhost.evil.example",
    "127.0.0.1.nip.io",
    "kedro.internal.evil.example",
    "",
    "[::1",
]


@pytest.mark.parametrize(
    ("header", "name"),
    [
        ("localhost:8000", "localhost"),
        ("LocalHost.:80", "localhost"),
        ("[::1]:8000", "::1"),
        ("::1", "::1"),
        ("127.0.0.1", "127.0.0.1"),
        ("evil.example:x", "evil.example:x"),
    ],
)
def test_host_name_drops_port_brackets_case_and_final_dot(header: str, name: str) -> None:
    assert host_name(header) == name


def test_only_addresses_and_localhost_names_are_rebinding_proof() -> None:
    rule = HostCheckMiddleware(app=None, allowed_hosts=["Kedro.Internal"])  # type: ignore[arg-type]
    assert [h for h in SERVED if not rule.allows(h)] == []
    assert [h for h in REFUSED if rule.allows(h)] == []
    assert not is_rebinding_proof("kedro.internal")


def test_allowed_hosts_must_be_names() -> None:
    assert Settings(allowed_hosts=["kedro.internal", "runs", "*"]).allowed_hosts
    for bad in ("http://kedro.internal", "kedro.internal:8000", "*.example.com", ""):
        with pytest.raises(ValueError, match="not a host name"):
            Settings(allowed_hosts=[bad])


@pytest.fixture(scope="module")
def keyless(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServiceProcess]:
    from support import copy_project

    project = copy_project(tmp_path_factory.mktemp("keyless"))
    service = ServiceProcess(
        project, workers=1, env={"KEDRO_RUNS_ALLOWED_HOSTS": '["kedro.internal"]'}
    ).start()
    yield service
    service.stop()


def test_without_keys_a_foreign_host_gets_a_421_problem_and_nothing_runs(
    keyless: ServiceProcess,
) -> None:
    before = keyless.client.get("/runs").json()["items"]
    for host in ("evil.example", "evil.example:8000", "127.0.0.1.nip.io"):
        for method, path in (("GET", "/runs"), ("GET", "/healthz"), ("POST", "/runs")):
            response = keyless.client.request(
                method, path, headers={"Host": host}, json={"pipeline_names": ["noop"]}
            )
            assert response.status_code == 421, (host, path, response.text)
            assert response.headers["content-type"] == "application/problem+json"
            problem = response.json()
            assert problem["type"].endswith("/host-not-allowed")
            assert "allowed_hosts" in problem["detail"]
    assert keyless.client.get("/runs").json()["items"] == before


def test_without_keys_loopback_names_and_allowed_hosts_are_served(
    keyless: ServiceProcess,
) -> None:
    for host in SERVED:
        response = keyless.client.get("/healthz", headers={"Host": host})
        assert response.status_code == 200, (host, response.text)


def test_with_keys_any_host_is_served(project: Path) -> None:
    key = "kr_host-check-test-key"
    entry = {"name": "ci", "sha256": hashlib.sha256(key.encode()).hexdigest(), "admin": False}
    service = ServiceProcess(
        project,
        workers=1,
        env={"KEDRO_RUNS_API_KEYS": json.dumps([entry])},
        headers={"Authorization": f"Bearer {key}"},
    ).start()
    try:
        response = service.client.get("/runs", headers={"Host": "evil.example:8000"})
        assert response.status_code == 200, response.text
    finally:
        service.stop()

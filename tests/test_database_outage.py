"""While its PostgreSQL database is unreachable, the service answers 503 with
Retry-After (never a 500), is not ready, and serves again once the database is back:
embedded and as a cluster replica."""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest
from conftest import ServiceProcess
from sqlalchemy.engine import make_url


def _admin(url: str) -> str:
    return (
        make_url(url)
        .set(drivername="postgresql", database="postgres")
        .render_as_string(hide_password=False)
    )


def _cut_off(url: str, *, allowed: bool) -> None:
    """Refuse (or allow again) every connection to the database, ending the open ones."""
    name = make_url(url).database
    with psycopg.connect(_admin(url), autocommit=True) as connection:
        connection.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS {str(allowed).lower()}')
        if not allowed:
            connection.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s",
                (name,),
            )


@pytest.mark.parametrize("mode", ["embedded", "cluster"])
def test_an_unreachable_database_is_a_503_and_not_ready(
    project: Path, postgres_url: str, mode: str
) -> None:
    env = {"KEDRO_RUNS_DATABASE": postgres_url}
    if mode == "cluster":
        env |= {"KEDRO_RUNS_CLUSTER": "true", "KEDRO_RUNS_LEASE_SECONDS": "30"}
    service = ServiceProcess(project, workers=1, env=env).start()
    try:
        run = service.submit(pipeline_names=["noop"])
        service.wait(run["run_id"])
        _cut_off(postgres_url, allowed=False)
        try:
            answers = {
                "submit": service.client.post("/runs", json={"pipeline_names": ["noop"]}),
                "get": service.client.get(f"/runs/{run['run_id']}"),
                "list": service.client.get("/runs"),
                "readyz": service.client.get("/readyz"),
            }
            for what, response in answers.items():
                assert response.status_code == 503, (what, response.text)
                assert int(response.headers["Retry-After"]) >= 1, what
        finally:
            _cut_off(postgres_url, allowed=True)
        again = service.submit(pipeline_names=["noop"])
        assert service.wait(again["run_id"], timeout=60)["status"] == "succeeded"
    finally:
        service.stop()

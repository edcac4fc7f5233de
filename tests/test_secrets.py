"""Secrets never leave: canaries planted in the environment, in the project's credentials,
in what nodes log and raise, in request headers and in params appear in no response
(body or header), no line of the service's log and no row of the store."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import ServiceProcess

# Distinct, so a leak names its source.
NODE = "CANARYn0de7f3a"  # in every shape a node logs and raises (see nodes.leak_secrets)
ENV_DB = "CANARYenvDb51c"  # KR_CANARY_DB=postgresql://u:<it>@h/db
ENV_AWS = "CANARYenvAws9e"  # AWS_SECRET_ACCESS_KEY
CREDENTIALS = "CANARYcreds4b2"  # conf/local/credentials.yml
BEARER = "CANARYbearer8d1"  # Authorization: Bearer ...
REQUEST_ID = "CANARYreqid6a0"  # X-Request-ID: password:...
PARAM = "CANARYparam2c9"  # secret-shaped strings in params
STORED_AS_GIVEN = {PARAM}  # a run needs its params: stored, never echoed (README)
EVERY = [NODE, ENV_DB, ENV_AWS, CREDENTIALS, BEARER, REQUEST_ID, PARAM]

SECRET_PARAMS = {
    "db": f"postgresql://u:{PARAM}@h/db",
    "nested": {"dsn": f"host=h password={PARAM}", "list": [f"Bearer {PARAM}"]},
    "signed": f"https://b.s3/x?X-Amz-Signature={PARAM}",
    "aws": f"aws_secret_access_key='{PARAM}'",
}


def _plant_credentials(project: Path) -> None:
    local = project / "conf" / "local"
    (local / "credentials.yml").write_text(
        f"secret_creds:\n  secret: {CREDENTIALS}\n  token: {CREDENTIALS}\n"
    )
    (local / "catalog.yml").write_text(
        "guarded_store:\n"
        "  type: text.TextDataset\n"
        "  filepath: data/secret/missing.txt\n"
        "  credentials: secret_creds\n"
    )


class Recorder:
    """Every response the test sees, body and headers, as text."""

    def __init__(self, service: ServiceProcess) -> None:
        self.service = service
        self.seen: list[str] = []
        self.headers = {
            "Authorization": f"Bearer {BEARER}",
            "X-Request-ID": f"password:{REQUEST_ID}",
        }

    def __call__(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        headers = {**self.headers, **kwargs.pop("headers", {})}
        response = self.service.client.request(method, path, headers=headers, **kwargs)
        self.seen.append(f"{response.status_code} {dict(response.headers)} {response.text}")
        return response


def _exercise(service: ServiceProcess, call: Recorder) -> None:
    runs = []
    for body in (
        {"pipeline_names": ["secrets"]},
        {"pipeline_names": ["secret_read"]},
        {"pipeline_names": ["noop"], "params": SECRET_PARAMS},
        {"pipeline_names": ["free_output"], "params": {"payload": SECRET_PARAMS["db"]}},
    ):
        response = call("POST", "/runs", json=body)
        assert response.status_code == 202, response.text
        runs.append(response.json()["run_id"])
    for run_id in runs:
        call("GET", f"/runs/{run_id}", params={"wait": 30})
    ended = [service.wait(run_id) for run_id in runs]
    assert [run["status"] for run in ended] == ["failed", "failed", "succeeded", "succeeded"]
    free = call("GET", f"/runs/{runs[3]}/outputs").json()["free"]
    assert free[0]["value"] == "postgresql://<redacted>@h/db"
    assert ended[0]["error"]["message"].count("<redacted>") >= 5
    # Loading the dataset that holds the credentials failed; its message names it.
    assert ended[1]["error"]["type"] == "DatasetError"
    assert "guarded_store" in ended[1]["error"]["message"]
    shown = call("GET", f"/runs/{runs[2]}").json()["request"]["params"]
    assert shown["db"] == "postgresql://<redacted>@h/db"
    assert shown["nested"]["list"] == ["Bearer <redacted>"]
    for run_id in runs:
        for path in ("events", "logs", "outputs"):
            call("GET", f"/runs/{run_id}/{path}")
        call("GET", f"/runs/{run_id}/events", headers={"accept": "text/event-stream"})
    compat = call("POST", "/run", json={"pipeline_names": ["secrets"]})
    assert compat.json()["status"] == "failure"
    call("POST", "/run", json={"pipeline_names": ["noop"], "params": SECRET_PARAMS})
    call("POST", "/runs/plan", json={"pipeline_names": ["noop"], "params": SECRET_PARAMS})
    assert call("POST", "/runs", json={"pipeline_names": [SECRET_PARAMS["db"]]}).status_code == 422
    env = {"x": "${oc.env:AWS_SECRET_ACCESS_KEY}"}
    assert call("POST", "/runs", json={"params": env}).status_code == 422
    bad_version = {"pipeline_names": ["versioned"], "load_versions": {SECRET_PARAMS["aws"]: "v"}}
    assert call("POST", "/runs", json=bad_version).status_code == 422
    for path in ("/runs", "/datasets", "/pipelines", "/pipelines/secrets", "/metrics", "/readyz"):
        call("GET", path)
    call("GET", "/snapshot", params={"params": f"db=postgresql://u:{PARAM}@h/db"})
    call("GET", "/runs/nope")


def _rows(database: Path) -> list[tuple[str, str]]:
    """(table, row as text) for every row of every table."""
    with sqlite3.connect(f"file:{database}?mode=ro", uri=True) as connection:
        tables = [
            row[0]
            for row in connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
        ]
        return [
            (table, repr(row))
            for table in tables
            for row in connection.execute(f'SELECT * FROM "{table}"')
        ]


@pytest.mark.parametrize("log_json", [False, True], ids=["plain-logs", "json-logs"])
def test_no_canary_leaves_the_service(project: Path, log_json: bool) -> None:
    _plant_credentials(project)
    service = ServiceProcess(
        project,
        workers=1,
        extra_args=["--log-level", "debug", *(["--log-json"] if log_json else [])],
        env={
            "KR_CANARY": NODE,
            "KR_CANARY_DB": f"postgresql://u:{ENV_DB}@h/db",
            "AWS_SECRET_ACCESS_KEY": ENV_AWS,
            "KEDRO_RUNS_WORKER_LOG_LEVEL": "INFO",
        },
    ).start()
    call = Recorder(service)
    try:
        _exercise(service, call)
    finally:
        service.stop()
    log = service.log_path.read_text()
    rows = _rows(project / ".kedro-runs" / "runs.db")
    assert len(call.seen) > 30
    assert len(rows) > 30
    assert "<redacted>" in log  # the node's messages were logged, redacted
    leaks = {
        canary: {
            "responses": sum(canary in text for text in call.seen),
            "log lines": sum(canary in line for line in log.splitlines()),
            "rows": sorted({table for table, row in rows if canary in row}),
        }
        for canary in EVERY
    }
    print(f"{len(call.seen)} responses, {len(log.splitlines())} log lines, {len(rows)} rows")
    for canary, found in leaks.items():
        where = [text[max(0, text.find(canary) - 300) :][:400] for text in call.seen]
        where += [line[:400] for line in log.splitlines() if canary in line]
        assert found["responses"] == 0, (canary, found, [w for w in where if canary in w])
        assert found["log lines"] == 0, (canary, found)
        if canary in STORED_AS_GIVEN:
            assert found["rows"] == ["runs"], (canary, found)  # the request as given
        else:
            assert found["rows"] == [], (canary, found)


def test_outputs_and_params_are_data_masked_only_where_a_secret_is_known(
    service: ServiceProcess,
) -> None:
    ordinary = "max_tokens=256 tokenizer: bert-base https://example.com/search?q=kedro&page=2"
    dsn = "postgresql://etl:pw-77c1e9@db/sales"
    plain = service.submit(pipeline_names=["free_output"], params={"payload": ordinary})
    secret = service.submit(pipeline_names=["free_output"], params={"payload": dsn})
    chatty = {"chatty": {"token": "tok-9f8e7d6c", "count": 1, "seconds": 0.0}}
    logged = service.submit(pipeline_names=["chatty"], params=chatty)
    for run in (plain, secret, logged):
        assert service.wait(run["run_id"])["status"] == "succeeded"

    def shown(run_id: str) -> tuple[dict[str, Any], dict[str, Any]]:
        request = service.get(run_id)["request"]
        free = service.client.get(f"/runs/{run_id}/outputs").json()["free"][0]
        return request, free

    request, free = shown(plain["run_id"])
    assert (request["params"], request["params_masked"]) == ({"payload": ordinary}, [])
    assert (free["value"], free["masked"]) == (ordinary, [])
    request, free = shown(secret["run_id"])
    assert request["params"] == {"payload": "postgresql://<redacted>@db/sales"}
    assert request["params_masked"] == ["/payload"]
    assert (free["value"], free["masked"]) == ("postgresql://<redacted>@db/sales", [""])
    # A param named like a secret is one, wherever the run shows it (here, a node's log).
    request, _ = shown(logged["run_id"])
    assert request["params"]["chatty"]["token"] == "<redacted>"
    assert request["params_masked"] == ["/chatty/token"]
    logs = service.client.get(f"/runs/{logged['run_id']}/logs").json()["items"]
    assert any("marker=<redacted> line=0" in line["message"] for line in logs)
    assert not any("tok-9f8e7d6c" in line["message"] for line in logs)


def test_the_projects_credentials_are_masked_wherever_they_show(project: Path) -> None:
    # Neither value has a secret's shape, and "payload" names no secret: only knowing
    # the credentials (one through ${oc.env:...}) masks them, in the worker (the free
    # output). The params echoed back are the caller's own text: never masked by the
    # server's secrets, or the echo would say which guess is one (README).
    (project / "conf" / "local" / "credentials.yml").write_text(
        "warehouse:\n  username: etl_loader\n  password: plain-pw-31337\n"
        "vault:\n  token: ${oc.env:KR_VAULT_VALUE}\n"
    )
    service = ServiceProcess(project, workers=1, env={"KR_VAULT_VALUE": "from-env-8c1f"}).start()
    try:
        for value in ("plain-pw-31337", "from-env-8c1f"):
            run_id = service.submit(pipeline_names=["free_output"], params={"payload": value})[
                "run_id"
            ]
            assert service.wait(run_id)["status"] == "succeeded"
            request = service.get(run_id)["request"]
            assert (request["params"], request["params_masked"]) == ({"payload": value}, [])
            (free,) = service.client.get(f"/runs/{run_id}/outputs").json()["free"]
            assert (free["value"], free["masked"]) == ("<redacted>", [""])
        # Not secrets: the username, and what is not in the credentials at all.
        run_id = service.submit(pipeline_names=["free_output"], params={"payload": "etl_loader"})[
            "run_id"
        ]
        service.wait(run_id)
        assert service.get(run_id)["request"]["params"] == {"payload": "etl_loader"}
    finally:
        service.stop()

"""Contract fuzzing: schemathesis (`--checks all`, a fixed seed) against the real service.

Every operation of the served OpenAPI document goes through schemathesis's coverage,
fuzzing and stateful phases; every response must conform to the document (status
codes, content types, headers, schemas, event streams) and the service must never
answer 5xx. The exceptions are in tests/schemathesis.toml, each with its reason.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import ServiceProcess
from support import copy_project

CONFIG = Path(__file__).parent / "schemathesis.toml"
SEED = 20261202
# ~70 s on 2 shared cores; more by hand with KEDRO_RUNS_FUZZ_EXAMPLES=1000.
MAX_EXAMPLES = int(os.environ.get("KEDRO_RUNS_FUZZ_EXAMPLES", "100"))
# The fuzzed service has API keys, so schemathesis also checks that every operation
# behind a key refuses requests without one, or with a wrong one (401).
FUZZ_KEY = "kr_fuzz-" + "f" * 40
REQUEST_TIMEOUT = 70  # above the 60 s cap of a `?wait=` long poll
# The whole schemathesis run; the test fails past it.
RUN_TIMEOUT = int(os.environ.get("KEDRO_RUNS_FUZZ_SECONDS", "170"))
SCHEMATHESIS = Path(sys.executable).parent / "schemathesis"


@pytest.fixture(scope="module")
def fuzzed_service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServiceProcess]:
    # An admin key: /metrics is for admins, and every operation should be reachable.
    key_entry = {
        "name": "fuzz",
        "sha256": hashlib.sha256(FUZZ_KEY.encode()).hexdigest(),
        "admin": True,
    }
    process = ServiceProcess(
        copy_project(tmp_path_factory.mktemp("fuzz")),
        headers={"Authorization": f"Bearer {FUZZ_KEY}"},
        env={
            "KEDRO_RUNS_API_KEYS": json.dumps([key_entry]),
            # Streams end after 2 s (instead of an hour), so a fuzzed stream never hangs.
            "KEDRO_RUNS_SSE_MAX_SECONDS": "2",
            "KEDRO_RUNS_SSE_HEARTBEAT_SECONDS": "0.5",
            # Fuzzed runs that ask for no timeout stop after 10 s at the latest.
            "KEDRO_RUNS_RUN_TIMEOUT_SECONDS": "10",
        },
    )
    process.start()
    yield process
    process.stop()


# What the fuzzer found, pinned down directly.


def test_405_allows_every_method_of_the_path(fuzzed_service: ServiceProcess) -> None:
    client = fuzzed_service.client
    for method, path, allowed in [
        ("OPTIONS", "/runs", "GET, HEAD, POST"),
        ("DELETE", "/runs/some-run", "GET, HEAD"),
        ("PUT", "/runs/some-run/cancel", "POST"),
        ("DELETE", "/runs/plan", "POST"),
    ]:
        response = client.request(method, path)
        assert response.status_code == 405, (method, path)
        assert response.headers["allow"] == allowed, (method, path)
        assert response.headers["content-type"] == "application/problem+json"


def test_kedro_run_does_not_coerce_types(fuzzed_service: ServiceProcess) -> None:
    for body in ({"only_missing_outputs": 0}, {"is_async": "yes"}, {"tags": "stage"}):
        response = fuzzed_service.client.post("/run", json=body)
        assert response.status_code == 422, body
        assert response.json()["detail"][0]["loc"][-1] == next(iter(body))  # Kedro's 422


def test_any_cursor_of_the_documented_shape_is_a_position(
    fuzzed_service: ServiceProcess,
) -> None:
    first = fuzzed_service.submit(pipeline_names=["noop"])
    second = fuzzed_service.submit(pipeline_names=["noop"])
    client = fuzzed_service.client
    page = client.get("/runs", params={"limit": 1}).json()
    assert [run["run_id"] for run in page["items"]] == [second["run_id"]]
    assert page["next"] == second["save_version"]
    older = client.get("/runs", params={"limit": 1, "cursor": page["next"]}).json()
    assert [run["run_id"] for run in older["items"]] == [first["run_id"]]
    # Not issued by the service, but of the documented shape: the runs sorting before it.
    future = client.get("/runs", params={"cursor": "9999-99-99T99.99.99.999Z"}).json()
    assert future["items"][0]["run_id"] == second["run_id"]
    past = client.get("/runs", params={"cursor": "0000-00-00T00.00.00.000Z"}).json()
    assert past == {"items": [], "next": None}
    for cursor in ("MjAyNi0xMi0wMlQwNS4yMC4zNS43OTZa", "2026-12-02T05.20.35.796Z\n"):
        response = client.get("/runs", params={"cursor": cursor})
        assert response.status_code == 422, cursor


def test_every_stream_sends_the_events_its_schema_documents(
    fuzzed_service: ServiceProcess,
) -> None:
    """schemathesis reads /events as a stream but the run streams only as JSON (it sends
    no `Accept: text/event-stream`), so each stream is checked here against the served
    document: the event, then its `data` against the `contentSchema`."""
    import jsonschema_rs  # schemathesis's own validator

    run = fuzzed_service.submit(pipeline_names=["chatty"])
    fuzzed_service.wait(run["run_id"])
    document = fuzzed_service.client.get("/openapi.json").json()
    streams = [
        (f"/runs/{run['run_id']}/events", "/runs/{run_id}/events", {}),
        (f"/runs/{run['run_id']}/logs", "/runs/{run_id}/logs", {}),
        ("/events", "/events", {"Last-Event-ID": "0"}),  # ends after 2 s here
    ]
    for url, template, headers in streams:
        media = document["paths"][template]["get"]["responses"]["200"]["content"]
        schema = media["text/event-stream"]["schema"]
        event_schema = jsonschema_rs.validator_for(
            {**schema, "components": document["components"]}, validate_formats=True
        )
        data_schema = jsonschema_rs.validator_for(
            {**schema["properties"]["data"]["contentSchema"], "components": document["components"]},
            validate_formats=True,
        )
        response = fuzzed_service.client.get(
            url, headers={"Accept": "text/event-stream", **headers}
        )
        assert response.status_code == 200, url
        events = _sse_events(response.text)
        assert events, url
        for event in events:
            event_schema.validate(event)
            data_schema.validate(json.loads(event["data"]))


def _sse_events(text: str) -> list[dict[str, str]]:
    """The events of an event stream (comments skipped), each as its fields."""
    events = []
    for block in text.split("\n\n"):
        fields = dict(
            line.split(": ", 1) for line in block.splitlines() if line and not line.startswith(":")
        )
        if fields:
            events.append(fields)
    return events


@pytest.mark.timeout(RUN_TIMEOUT + 60)
def test_schemathesis_finds_no_failure(
    fuzzed_service: ServiceProcess, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    command = [
        str(SCHEMATHESIS),
        "--config-file",
        str(CONFIG),
        "run",
        f"{fuzzed_service.url}/openapi.json",
        "--header",
        f"Authorization: Bearer {FUZZ_KEY}",
        "--checks",
        "all",
        "--phases",
        "examples,coverage,fuzzing,stateful",
        "--seed",
        str(SEED),
        "--max-examples",
        str(MAX_EXAMPLES),
        "--workers",
        "1",
        "--request-timeout",
        str(REQUEST_TIMEOUT),
        "--no-color",
    ]
    started = time.monotonic()
    try:
        # In a scratch directory: schemathesis and Hypothesis keep state in the cwd.
        result = subprocess.run(
            command, cwd=tmp_path, capture_output=True, text=True, timeout=RUN_TIMEOUT
        )
    except subprocess.TimeoutExpired as expired:
        output = expired.stdout if isinstance(expired.stdout, str) else ""
        pytest.fail(f"schemathesis ran over {RUN_TIMEOUT} s:\n{_report(output)}")
    elapsed = time.monotonic() - started
    output = result.stdout + result.stderr
    cases = re.search(r"(\d+) generated", output)
    with capsys.disabled():
        print(
            f"\nschemathesis: {cases.group(1) if cases else '?'} cases in {elapsed:.0f} s, "
            f"exit code {result.returncode}"
        )
    assert result.returncode == 0, _report(output)
    assert cases is not None, _report(output)
    assert int(cases.group(1)) >= 10 * MAX_EXAMPLES, cases.group(0)
    operations = re.search(r"Selected: (\d+)/(\d+)\s+Tested: (\d+)", output)
    assert operations is not None, _report(output)
    assert len(set(operations.groups())) == 1, operations.group(0)  # every operation, tested


def _report(output: str, limit: int = 20_000) -> str:
    """schemathesis's report from its failures on, cut to ``limit`` characters."""
    start = output.find("FAILURES")
    report = output[start:] if start >= 0 else output
    if len(report) > limit:
        report = report[: limit // 2] + "\n[...]\n" + report[-limit // 2 :]
    return report

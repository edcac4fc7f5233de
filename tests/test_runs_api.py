"""POST /runs → status, progress, events, listing and cancellation, over real HTTP."""

from __future__ import annotations

import json
import time
import uuid
from datetime import datetime

from conftest import ServiceProcess, ledger


def test_submit_answers_202_with_location_and_a_queued_uuid4(service: ServiceProcess) -> None:
    response = service.client.post("/runs", json={"pipeline_names": ["noop"]})
    assert response.status_code == 202
    body = response.json()
    assert uuid.UUID(body["run_id"]).version == 4
    assert body["status"] == "queued"
    assert response.headers["location"] == f"/runs/{body['run_id']}"
    assert service.client.get(response.headers["location"]).status_code == 200


def test_a_run_succeeds_with_progress_nodes_request_and_timestamps(
    service: ServiceProcess,
) -> None:
    run_id = service.submit(pipeline_names=["slow"], params={"slow": {"seconds": 0.3}})["run_id"]
    running = service.wait(run_id, {"running"})
    assert running["progress"]["nodes_total"] == 4
    done = service.wait(run_id)
    assert done["status"] == "succeeded"
    assert done["progress"] == {"nodes_total": 4, "nodes_done": 4}
    assert [n["name"] for n in done["nodes"]] == [
        "slow_start",
        "slow_step_1",
        "slow_step_2",
        "slow_step_3",
    ]
    for node in done["nodes"]:
        assert node["status"] == "completed"
        assert datetime.fromisoformat(node["started_at"]) <= datetime.fromisoformat(
            node["finished_at"]
        )
    assert done["request"]["params"] == {"slow": {"seconds": 0.3}}
    assert done["request"]["pipeline_names"] == ["slow"]
    assert done["request"]["runner"] == "SequentialRunner"
    assert done["env"] == "local"
    assert done["kedro_version"].startswith("1.")
    stamps = done["timestamps"]
    assert stamps["queued_at"] <= stamps["started_at"] <= stamps["finished_at"]
    assert done["error"] is None
    # Kedro received the save version as its run id: the project's ledger hook saw it.
    assert f"{done['save_version']} slow_step_3" in ledger(service.project)


def test_events_are_ordered_with_seq_and_resume_after(service: ServiceProcess) -> None:
    run_id = service.submit(pipeline_names=["stages"], params={"token": "ev"})["run_id"]
    service.wait(run_id)
    events = service.events(run_id)
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1))
    assert [(e["type"], e["node"]) for e in events] == [
        ("run_queued", None),
        ("run_started", None),
        ("node_started", "prepare"),
        ("node_completed", "prepare"),
        ("node_started", "pause"),
        ("node_completed", "pause"),
        ("node_started", "finish"),
        ("node_completed", "finish"),
        ("run_succeeded", None),
    ]
    assert all(events[i]["at"] <= events[i + 1]["at"] for i in range(len(events) - 1))
    assert service.events(run_id, after=4) == events[4:]
    assert service.events(run_id, after=len(events)) == []


def test_a_failed_run_is_a_200_with_a_redacted_error(service: ServiceProcess) -> None:
    secret = "postgresql://admin:hunter2@db/x password=hunter2"
    run_id = service.submit(pipeline_names=["fail"], params={"message": secret})["run_id"]
    run = service.wait(run_id)
    assert run["status"] == "failed"
    assert run["error"]["reason"] == "error"
    assert run["error"]["type"] == "ValueError"
    assert "hunter2" not in run["error"]["message"]
    assert "<redacted>" in run["error"]["message"]
    assert run["nodes"][0]["status"] == "failed"
    events = service.events(run_id)
    assert [e["type"] for e in events][-2:] == ["node_failed", "run_failed"]
    assert "hunter2" not in str(events)


def test_an_event_cursor_past_any_integer_is_a_422(service: ServiceProcess) -> None:
    run_id = service.submit(pipeline_names=["noop"])["run_id"]
    response = service.client.get(f"/runs/{run_id}/events", params={"after": 10**20})
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"


def test_unknown_run_is_a_404_problem(service: ServiceProcess) -> None:
    for path in (f"/runs/{uuid.uuid4()}", f"/runs/{uuid.uuid4()}/events"):
        response = service.client.get(path)
        assert response.status_code == 404
        assert response.headers["content-type"] == "application/problem+json"
        assert response.json()["status"] == 404
    response = service.client.post(f"/runs/{uuid.uuid4()}/cancel")
    assert response.status_code == 404


def test_list_filters_by_status_and_pipeline_newest_first_with_cursor(
    service: ServiceProcess,
) -> None:
    pipeline = "reporting"
    ids = [
        service.submit(pipeline_names=[pipeline], params={"message": f"m{i}"})["run_id"]
        for i in range(5)
    ]
    for run_id in ids:
        service.wait(run_id)
    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        params: dict[str, str | int] = {"pipeline": pipeline, "status": "succeeded", "limit": 2}
        if cursor:
            params["cursor"] = cursor
        page = service.client.get("/runs", params=params).json()
        assert len(page["items"]) <= 2
        assert all(item["pipeline_names"] == [pipeline] for item in page["items"])
        assert all(item["status"] == "succeeded" for item in page["items"])
        seen += [item["run_id"] for item in page["items"]]
        pages += 1
        cursor = page["next"]
        if cursor is None:
            break
    assert seen[:5] == list(reversed(ids))  # newest first, none skipped or repeated
    assert len(seen) == len(set(seen))
    assert pages >= 3
    running = service.client.get("/runs", params={"status": "running", "pipeline": pipeline})
    assert running.json()["items"] == []


def test_list_limit_is_bounded_and_bad_queries_are_problems(service: ServiceProcess) -> None:
    assert service.client.get("/runs", params={"limit": 200}).status_code == 200
    for params in (
        {"limit": 0},
        {"limit": 201},
        {"status": "sleeping"},
        {"cursor": "%%%"},
        {"limit": "x"},
    ):
        response = service.client.get("/runs", params=params)
        assert response.status_code == 422, params
        assert response.headers["content-type"] == "application/problem+json"


def test_cancelling_a_queued_run_is_immediate(service: ServiceProcess) -> None:
    # Two runs that write the same file: the second waits for the first.
    first = service.submit(pipeline_names=["tenant"], params={"tenant": "cq", "delay": 1.5})
    second = service.submit(pipeline_names=["tenant"], params={"tenant": "cq"})
    assert service.get(second["run_id"])["waiting_for"] == [first["run_id"]]
    response = service.client.post(f"/runs/{second['run_id']}/cancel")
    assert response.status_code == 202
    assert response.json()["status"] == "cancelled"
    assert service.get(second["run_id"])["status"] == "cancelled"
    assert service.wait(first["run_id"])["status"] == "succeeded"
    again = service.client.post(f"/runs/{second['run_id']}/cancel")
    assert again.status_code == 409
    assert again.headers["content-type"] == "application/problem+json"
    assert "run_cancelled" in [e["type"] for e in service.events(second["run_id"])]


def test_cancelling_a_running_run_stops_it_at_the_next_node(service: ServiceProcess) -> None:
    run_id = service.submit(pipeline_names=["slow"], params={"slow": {"seconds": 0.6}})["run_id"]
    service.wait(run_id, {"running"})
    while service.get(run_id)["progress"]["nodes_done"] < 1:
        time.sleep(0.05)
    response = service.client.post(f"/runs/{run_id}/cancel")
    assert response.status_code == 202
    assert response.json()["status"] in {"cancelling", "cancelled"}
    run = service.wait(run_id)
    assert run["status"] == "cancelled"
    assert run["progress"]["nodes_done"] < 4
    assert run["timestamps"]["cancel_requested_at"] is not None
    types = [e["type"] for e in service.events(run_id)]
    assert types[-1] == "run_cancelled"
    assert "run_cancel_requested" in types
    assert service.client.post(f"/runs/{run_id}/cancel").status_code == 409


def test_a_run_that_ignores_cancel_is_killed_after_the_grace_period(
    service: ServiceProcess,
) -> None:
    run_id = service.submit(pipeline_names=["stuck"], params={"sleep_forever": 600})["run_id"]
    service.wait(run_id, {"running"})
    while service.get(run_id)["nodes"][0]["status"] != "running":
        time.sleep(0.05)
    started = time.monotonic()
    service.client.post(f"/runs/{run_id}/cancel")
    run = service.wait(run_id, timeout=30)
    assert run["status"] == "cancelled"
    assert time.monotonic() - started >= 1.5  # the service waited out the 2 s grace
    # The pool replaced the killed worker; the service runs pipelines again.
    service.wait_for_workers(2)
    after = service.submit(pipeline_names=["noop"])["run_id"]
    assert service.wait(after)["status"] == "succeeded"


def test_workers_run_without_telemetry_and_with_plain_logging(service: ServiceProcess) -> None:
    run = service.wait(service.submit(pipeline_names=["probe"])["run_id"])
    assert run["status"] == "succeeded"
    probe = json.loads((service.project / "data" / "probe.json").read_text())
    assert probe["KEDRO_DISABLE_TELEMETRY"] == "1"
    assert probe["DO_NOT_TRACK"] == "1"
    # A plain stderr handler and the run log capture; not Kedro's rich console handler.
    assert probe["handlers"] == ["RunLogCapture", "StreamHandler"]


def test_long_poll_answers_when_the_run_ends(service: ServiceProcess) -> None:
    run_id = service.submit(pipeline_names=["slow"], params={"slow": {"seconds": 0.3}})["run_id"]
    started = time.monotonic()
    response = service.client.get(f"/runs/{run_id}", params={"wait": 30})
    assert response.status_code == 200
    assert response.json()["status"] == "succeeded"
    assert time.monotonic() - started < 15
    # A bounded wait on a run that does not end answers with its current state.
    stuck = service.submit(pipeline_names=["stuck"], params={"sleep_forever": 600})["run_id"]
    started = time.monotonic()
    assert service.client.get(f"/runs/{stuck}", params={"wait": 0.5}).json()["status"] in {
        "queued",
        "running",
    }
    assert time.monotonic() - started >= 0.5
    assert service.client.post(f"/runs/{stuck}/cancel").status_code == 202
    assert service.client.get(f"/runs/{stuck}", params={"wait": 61}).status_code == 422
    assert service.wait(stuck, timeout=30)["status"] == "cancelled"

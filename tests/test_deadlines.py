"""Timeouts count from submission; a cancel that comes after the last node began."""

from __future__ import annotations

import time
from pathlib import Path

from conftest import ServiceProcess


def test_a_run_still_queued_past_its_timeout_ends_failed_timeout(project: Path) -> None:
    service = ServiceProcess(project, workers=1).start()
    try:
        service.wait_for_workers(1)
        blocker = service.submit(pipeline_names=["stuck"], params={"sleep_forever": 600})
        service.wait(blocker["run_id"], {"running"})
        submitted = time.monotonic()
        waiting = service.submit(pipeline_names=["noop"], timeout_seconds=1.0)
        assert waiting["status"] == "queued"
        run = service.wait(waiting["run_id"], timeout=30)
        assert (run["status"], run["error"]["reason"]) == ("failed", "timeout")
        assert run["error"]["type"] == "RunTimeout"
        assert run["attempts"] == 0  # no worker ever took it
        assert time.monotonic() - submitted >= 1.0
        assert service.get(blocker["run_id"])["status"] == "running"  # untouched
        events = [event["type"] for event in service.events(waiting["run_id"])]
        assert events == ["run_queued", "run_failed"]
    finally:
        service.stop()


def test_a_cancel_during_the_last_node_ends_succeeded_and_says_it_came_too_late(
    service: ServiceProcess,
) -> None:
    # The shared service's cancel grace (2 s) outlasts the last node (0.6 s).
    run_id = service.submit(pipeline_names=["slow"], params={"slow": {"seconds": 0.6}})["run_id"]
    deadline = time.monotonic() + 30
    while not any(
        event["type"] == "node_started" and event["node"] == "slow_step_3"
        for event in service.events(run_id)
    ):
        assert time.monotonic() < deadline, "the last node never began"
        time.sleep(0.02)
    response = service.client.post(f"/runs/{run_id}/cancel")
    assert response.status_code == 202, response.text
    assert response.json()["status"] == "cancelling"

    run = service.wait(run_id, timeout=30)
    assert run["status"] == "succeeded"
    assert run["timestamps"]["cancel_requested_at"] is not None
    assert [node["status"] for node in run["nodes"]] == ["completed"] * 4
    events = service.events(run_id)
    assert [e["type"] for e in events][-2:] == ["node_completed", "run_succeeded"]
    assert "run_cancel_requested" in [e["type"] for e in events]
    assert events[-1]["data"]["cancel_requested"] is True
    assert "last node" in events[-1]["data"]["detail"]

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

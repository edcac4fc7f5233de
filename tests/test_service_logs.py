"""The service's own logs: JSON lines with request and run ids; X-Request-ID in and out."""

from __future__ import annotations

import json
import time
from pathlib import Path

from conftest import ServiceProcess


def test_request_ids_and_json_logs(project: Path) -> None:
    service = ServiceProcess(project, workers=1, extra_args=["--log-json", "--log-level", "info"])
    service.start()
    try:
        response = service.client.post(
            "/runs", json={"pipeline_names": ["noop"]}, headers={"X-Request-ID": "req-123"}
        )
        assert response.headers["x-request-id"] == "req-123"
        run_id = response.json()["run_id"]
        service.wait(run_id)
        made_up = service.client.get("/healthz").headers["x-request-id"]
        assert len(made_up) == 32
        hostile = service.client.get("/healthz", headers={"X-Request-ID": "a b\tc"})
        assert hostile.headers["x-request-id"] != "a b\tc"
        time.sleep(0.5)
        lines = [
            json.loads(line)
            for line in service.log_path.read_text().splitlines()
            if line.startswith("{")
        ]
        queued = [e for e in lines if e["message"] == f"run {run_id} queued"]
        assert queued
        assert queued[0]["request_id"] == "req-123"
        assert queued[0]["run_id"] == run_id
        assert any(
            e["message"] == f"run {run_id} succeeded" and e["run_id"] == run_id for e in lines
        )
        assert {"ts", "level", "logger", "message"} <= set(lines[0])
    finally:
        service.stop()

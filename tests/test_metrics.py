"""GET /metrics: Prometheus counters that match the runs made."""

from __future__ import annotations

from pathlib import Path

from conftest import ServiceProcess


def _samples(text: str) -> dict[str, float]:
    samples = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            samples[name] = float(value)
    return samples


def test_metrics_count_the_runs_made(project: Path) -> None:
    service = ServiceProcess(project, workers=2).start()
    try:
        ok = [service.submit(pipeline_names=["noop"])["run_id"] for _ in range(3)]
        failed = service.submit(pipeline_names=["fail"], params={"message": "x"})["run_id"]
        for run_id in [*ok, failed]:
            service.wait(run_id)
        service.client.get("/runs/does-not-exist")
        response = service.client.get("/metrics")
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/plain")
        samples = _samples(response.text)
        assert samples['kedro_runs_submitted_total{pipeline="noop"}'] == 3
        assert samples['kedro_runs_submitted_total{pipeline="fail"}'] == 1
        assert samples['kedro_runs_finished_total{pipeline="noop",status="succeeded"}'] == 3
        assert samples['kedro_runs_finished_total{pipeline="fail",status="failed"}'] == 1
        assert (
            samples['kedro_runs_run_duration_seconds_count{pipeline="noop",status="succeeded"}']
            == 3
        )
        assert samples['kedro_runs_node_duration_seconds_count{node="return_one"}'] == 3
        assert samples["kedro_runs_queue_depth"] == 0
        assert samples["kedro_runs_workers_busy"] == 0
        assert samples["kedro_runs_workers_idle"] == 2
        assert samples["kedro_runs_waiting_on_conflicts"] == 0
        assert (
            samples['kedro_runs_http_requests_total{method="POST",route="/runs",status="202"}'] == 4
        )
        assert (
            samples[
                'kedro_runs_http_requests_total{method="GET",route="/runs/{run_id}",status="404"}'
            ]
            == 1
        )
    finally:
        service.stop()

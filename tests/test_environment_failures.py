"""A failure of the server's environment is a 503 to retry, never the caller's 4xx."""

from __future__ import annotations

from pathlib import Path

from conftest import ServiceProcess

# The test project's catalog reads runtime_params, so a request with params makes the
# service resolve the project's configuration again.
BODY = {"pipeline_names": ["noop"], "params": {"token": "env"}}


def test_configuration_that_cannot_be_read_is_a_503_without_server_paths(project: Path) -> None:
    service = ServiceProcess(project, workers=1).start()
    conf = project / "conf" / "base"
    moved = project / "conf-base-away"
    try:
        assert service.client.post("/runs/plan", json=BODY).status_code == 200
        conf.rename(moved)  # as if the disk went away, or no descriptor was left to read it
        try:
            for path in ("/runs", "/runs/plan"):
                response = service.client.post(path, json=BODY)
                assert response.status_code == 503, response.text
                assert response.headers["content-type"] == "application/problem+json"
                assert int(response.headers["retry-after"]) >= 1
                assert str(project) not in response.text
                assert "conf/base" not in response.text
        finally:
            moved.rename(conf)
        assert service.client.get("/runs").json()["items"] == []  # nothing was stored
        # The cause is in the server's log, and the service takes the run once it can.
        assert "the project's catalog cannot be resolved" in service.log_path.read_text()
        run = service.submit(**BODY)
        assert service.wait(run["run_id"])["status"] == "succeeded"
    finally:
        service.stop()


# Params that break the catalog (a dataset type from runtime_params) are still the
# caller's 422 "catalog_resolution": tests/test_hostile_input.py checks them.

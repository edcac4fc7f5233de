"""The bundled demo project works through the service, as the README shows it."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from conftest import ServiceProcess

DEMO = Path(__file__).parents[1] / "examples" / "spaceflights"


def test_the_demo_runs_its_default_and_slow_pipelines(tmp_path: Path) -> None:
    project = tmp_path / "spaceflights"
    shutil.copytree(DEMO, project, ignore=shutil.ignore_patterns("__pycache__", ".kedro-runs"))
    service = ServiceProcess(project, workers=2).start()
    try:
        default = service.submit(
            pipeline_names=["__default__"], params={"model_options": {"test_size": 0.3}}
        )
        slow = service.submit(pipeline_names=["slow"], params={"slow": {"seconds_per_step": 0.05}})
        run = service.wait(default["run_id"], timeout=120)
        assert run["status"] == "succeeded", run["error"]
        assert run["progress"]["nodes_done"] == run["progress"]["nodes_total"] == 8
        metrics = json.loads((project / "data/08_reporting/metrics.json").read_text())
        assert metrics  # the evaluation wrote its figures
        model = project / "data/06_models/regressor.pickle" / run["save_version"]
        assert (model / "regressor.pickle").is_file()  # saved under the run's save version
        assert service.wait(slow["run_id"], timeout=60)["status"] == "succeeded"
        namespaced = service.submit(pipeline_names=["__default__"], namespaces=["reporting"])
        assert service.wait(namespaced["run_id"], timeout=60)["status"] == "succeeded"
    finally:
        service.stop()

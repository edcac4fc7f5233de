"""Attacks on the catalog guard that need a project of their own: credentials that read
params, a catalog file named like a parameters file, a tenant aimed at another
dataset's files, a symlink created while a run waits. Each project is a per-module copy
of tests/project with the attack files added, served by the real service.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import ServiceProcess
from support import copy_project
from test_hostile_input import _codes, _refused

# Credentials a careless author lets params reach (item 8): an endpoint with a default.
CREDENTIALS_READING_PARAMS = """
minio:
  key: project-key-123
  secret: project-secret-456
  client_kwargs:
    endpoint_url: ${runtime_params:endpoint, http://127.0.0.1:9}
"""

# Another dataset whose file lies where `tenant_out` could be aimed (item 10).
VICTIM_DATASET = """
victim_out:
  type: text.TextDataset
  filepath: data/tenants/victim/out.txt
"""

# The params-driven dataset, in a catalog file the loader's `catalog*/**` pattern reads
# although its name starts with "parameters" (item 9).
MODULAR_CATALOG = """
tenant_out:
  type: text.TextDataset
  filepath: data/tenants/${runtime_params:tenant, default}/out.txt
"""


@pytest.fixture(scope="module")
def guarded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServiceProcess]:
    """The test project with credentials that read params and a victim dataset; one
    worker, so a second run waits in the queue."""
    project = copy_project(tmp_path_factory.mktemp("guarded"))
    conf = project / "conf" / "base"
    with (conf / "credentials.yml").open("a") as credentials:
        credentials.write(CREDENTIALS_READING_PARAMS)
    with (conf / "catalog.yml").open("a") as catalog:
        catalog.write(VICTIM_DATASET)
    service = ServiceProcess(project, workers=1)
    service.start()
    yield service
    service.stop()


@pytest.fixture(scope="module")
def modular(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServiceProcess]:
    """The test project where no file named catalog* mentions runtime_params: the only
    params-driven dataset is in conf/base/catalog/parameters_tenant.yml."""
    project = copy_project(tmp_path_factory.mktemp("modular"))
    conf = project / "conf" / "base"
    (conf / "catalog.yml").write_text(
        "names:\n  type: text.TextDataset\n  filepath: data/01_raw/names.txt\n"
    )
    (conf / "catalog").mkdir()
    (conf / "catalog" / "parameters_tenant.yml").write_text(MODULAR_CATALOG)
    service = ServiceProcess(project, workers=1)
    service.start()
    yield service
    service.stop()


def _run(service: ServiceProcess, params: dict[str, Any]) -> dict[str, Any]:
    return service.wait(service.submit(pipeline_names=["tenant"], params=params)["run_id"])


# -- item 8: params may not change credentials ------------------------------------------


def test_params_may_not_change_credentials(guarded: ServiceProcess) -> None:
    body = {
        "pipeline_names": ["tenant"],
        "params": {"tenant": "t8", "endpoint": "http://attacker.example:9000"},
    }
    problem = _refused(guarded, body)
    assert "credentials_changed" in _codes(problem), problem
    assert "'minio'" in problem["errors"][0]["msg"]
    text = str(problem)
    assert "project-key-123" not in text
    assert "project-secret-456" not in text
    # Params the credentials do not read still run.
    assert _run(guarded, {"tenant": "t8"})["status"] == "succeeded"


# -- item 9: the loader decides which files are catalog files -------------------------


def test_a_catalog_file_named_like_parameters_is_still_guarded(modular: ServiceProcess) -> None:
    escape = modular.project.parent / "escaped"
    body = {"pipeline_names": ["tenant"], "params": {"tenant": "../../../escaped"}}
    assert "path_outside_data_root" in _codes(_refused(modular, body))
    assert not escape.exists()
    run = _run(modular, {"tenant": "t9"})
    assert run["status"] == "succeeded", run
    assert (modular.project / "data/tenants/t9/out.txt").read_text() == "tenant=t9"


# Kedro 1.7 calls an OmegaConf API that warns on every load (the service filters it too).
@pytest.mark.filterwarnings("ignore:register_new_resolver:UserWarning")
def test_reach_follows_the_loaders_own_patterns(tmp_path: Path) -> None:
    """In-process: a project's config_patterns decide what is a catalog file."""
    from kedro.config import OmegaConfigLoader

    from app.kedro_bridge.config_reach import params_reach

    conf = tmp_path / "conf"
    for env in ("base", "local"):
        (conf / env).mkdir(parents=True)
    (conf / "base" / "parameters.yml").write_text("tenant: ${runtime_params:t, x}\n")
    (conf / "base" / "datasets.yml").write_text("d:\n  filepath: ${runtime_params:t, x}\n")

    def reach(**patterns: list[str]) -> frozenset[str]:
        loader = OmegaConfigLoader(
            str(conf), base_env="base", default_run_env="local", config_patterns=patterns
        )
        return params_reach(loader)

    assert reach() == frozenset()  # parameters may read params; datasets.yml is not read
    assert reach(catalog=["datasets*"]) == {"catalog"}
    (conf / "local" / "credentials.yml").write_text("c:\n  k: ${runtime_params:t, x}\n")
    assert reach(catalog=["datasets*"]) == {"catalog", "credentials"}


# -- item 10: a tenant may not be aimed at another dataset's files -------------------


@pytest.mark.parametrize("tenant", ["../tenants/victim", "victim", "./victim", "victim/"])
def test_a_tenant_may_not_write_another_datasets_file(guarded: ServiceProcess, tenant: str) -> None:
    body = {"pipeline_names": ["tenant"], "params": {"tenant": tenant}}
    problem = _refused(guarded, body)
    assert "path_overlaps_dataset" in _codes(problem), problem
    assert "'victim_out'" in problem["errors"][0]["msg"]


# -- item 11: the location is checked again just before the run ------------------------


def test_a_symlink_made_while_the_run_waits_fails_the_run(
    guarded: ServiceProcess, tmp_path: Path
) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    blocker = guarded.submit(pipeline_names=["tenant"], params={"tenant": "blocker", "delay": 3.0})
    waiting = guarded.submit(pipeline_names=["tenant"], params={"tenant": "late_link"})
    link = guarded.project / "data" / "tenants" / "late_link"
    link.parent.mkdir(parents=True, exist_ok=True)
    link.symlink_to(outside, target_is_directory=True)
    try:
        # The check at submission passed; the link came after it, before the run.
        assert guarded.get(waiting["run_id"])["status"] == "queued"
        run = guarded.wait(waiting["run_id"], timeout=90)
        assert run["status"] == "failed", run
        assert run["error"]["type"] == "LocationGuardError", run["error"]
        assert "outside the project's data directory" in run["error"]["message"]
        assert list(outside.iterdir()) == []
        assert guarded.wait(blocker["run_id"])["status"] == "succeeded"
    finally:
        link.unlink()
    # Without the link the same request runs: the failure was the link's.
    assert _run(guarded, {"tenant": "late_link"})["status"] == "succeeded"

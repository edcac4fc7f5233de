"""The command line: where the project comes from, settings from the environment,
and packaged mode."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ServiceProcess


def _serve(
    cwd: Path, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "app", "serve", "--port", "0", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **(env or {})},
    )


def test_outside_a_project_it_says_how_to_point_at_one(tmp_path: Path) -> None:
    result = _serve(tmp_path)
    assert result.returncode == 2
    assert "is not a Kedro project" in result.stderr
    assert "--project" in result.stderr
    assert "examples/spaceflights" in result.stderr


def test_without_project_flag_the_current_directory_is_served(project: Path) -> None:
    service = ServiceProcess(project, workers=1, project_flag=False).start()
    try:
        run = service.wait(service.submit(pipeline_names=["noop"])["run_id"])
        assert run["status"] == "succeeded"
        assert (project / ".kedro-runs" / "runs.db").exists()  # the default state directory
    finally:
        service.stop()


def test_invalid_settings_from_the_environment_are_refused(tmp_path: Path) -> None:
    result = _serve(tmp_path, env={"KEDRO_RUNS_WORKERS": "0"})
    assert result.returncode == 2
    assert "workers" in result.stderr


def test_the_console_script_shows_its_flags() -> None:
    script = Path(sys.executable).with_name("kedro-runs")
    result = subprocess.run(
        [str(script), "serve", "--help"], capture_output=True, text=True, timeout=30, check=True
    )
    for flag in (
        "--project",
        "--env",
        "--conf-source",
        "--host",
        "--port",
        "--workers",
        "--database",
    ):
        assert flag in result.stdout


def test_packaged_mode_runs_an_importable_project_package_with_conf_source(
    project: Path,
    tmp_path: Path,
) -> None:
    # The project package is importable (on PYTHONPATH, as if installed); its
    # configuration comes from --conf-source; the project directory (for data)
    # comes from the environment.
    state = tmp_path / "state"
    service = ServiceProcess(
        project,
        workers=1,
        extra_args=[
            "--package",
            "kr_testproject",
            "--conf-source",
            str(project / "conf"),
            "--state-dir",
            str(state),
        ],
        env={"PYTHONPATH": str(project / "src"), "KEDRO_RUNS_PROJECT": str(project)},
        project_flag=False,
    )
    service.start()
    try:
        run = service.wait(
            service.submit(pipeline_names=["tenant"], params={"tenant": "packaged"})["run_id"]
        )
        assert run["status"] == "succeeded"
        assert (project / "data/tenants/packaged/out.txt").read_text() == "tenant=packaged"
        assert (state / "runs.db").exists()
    finally:
        service.stop()


def test_it_refuses_to_listen_beyond_loopback_without_keys_and_says_why(project: Path) -> None:
    for refused in (
        _serve(project, "--host", "0.0.0.0"),
        _serve(project, env={"KEDRO_RUNS_HOST": "0.0.0.0"}),
    ):
        assert refused.returncode == 2
        assert "refusing to listen on 0.0.0.0 without API keys" in refused.stderr
        assert "--insecure" in refused.stderr
        assert "kedro-runs new-key" in refused.stderr
    # With --insecure the host is accepted. The bad worker count then stops it before
    # it binds any address (tests listen on loopback only).
    accepted = _serve(project, "--host", "0.0.0.0", "--insecure", "--workers", "0")
    assert accepted.returncode == 2
    assert "without API keys" not in accepted.stderr
    assert "workers" in accepted.stderr


def test_new_key_prints_a_key_and_the_entry_that_admits_it() -> None:
    import hashlib
    import json

    result = subprocess.run(
        [sys.executable, "-m", "app", "new-key", "--name", "ci", "--admin"],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    lines = result.stdout.splitlines()
    key = lines[0].rsplit(" ", 1)[-1]
    (entry,) = json.loads(lines[-1])
    assert entry == {
        "name": "ci",
        "sha256": hashlib.sha256(key.encode()).hexdigest(),
        "admin": True,
    }
    assert len(key) >= 40


def _importing(project: Path, module: str) -> Path:
    """``project`` with a pipeline registry that imports ``module``."""
    registry = project / "src" / "kr_testproject" / "pipeline_registry.py"
    registry.write_text(registry.read_text() + f"\nimport {module}  # noqa: E402, F401\n")
    return project


@pytest.mark.parametrize("with_requirements_file", [True, False])
def test_a_missing_requirement_is_one_line_saying_what_to_install(
    project: Path, with_requirements_file: bool
) -> None:
    _importing(project, "kr_not_installed_anywhere.plotting")
    if with_requirements_file:
        (project / "requirements.txt").write_text("kr-not-installed-anywhere\n")
    result = _serve(project, "--project", str(project))
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    (line,) = [line for line in result.stderr.splitlines() if line.startswith("kedro-runs:")]
    assert "'kr_not_installed_anywhere'" in line
    assert sys.executable in line  # the environment to install into
    install = (
        f"{sys.executable} -m pip install -r {project / 'requirements.txt'}"
        if with_requirements_file
        else f"{sys.executable} -m pip install -e {project}"
    )
    assert line.endswith(install), line


def test_a_missing_module_of_the_project_itself_is_not_a_requirement(project: Path) -> None:
    _importing(project, "kr_testproject.no_such_module")
    result = _serve(project, "--project", str(project))
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    assert "No module named 'kr_testproject.no_such_module'" in result.stderr
    assert "pip install" not in result.stderr

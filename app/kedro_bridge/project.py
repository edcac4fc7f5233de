"""Opening a Kedro project and the one KedroServiceSession a process keeps for its life."""

from __future__ import annotations

import logging
import logging.config
import os
import subprocess
import sys
import tomllib
import warnings
from dataclasses import dataclass
from pathlib import Path

from app.errors import ProjectError

# kedro-telemetry is a hard dependency of kedro 1.7 and posts to the network
# when a catalog is created. The service never sends telemetry, in any process.
TELEMETRY_OFF = {"KEDRO_DISABLE_TELEMETRY": "1", "DO_NOT_TRACK": "1"}


def disable_telemetry() -> None:
    """Turn telemetry off and plain logging on for this process and every child."""
    os.environ.update(TELEMETRY_OFF)
    os.environ.setdefault(
        "KEDRO_LOGGING_CONFIG", str(Path(__file__).with_name("plain_logging.yml"))
    )


def quiet_known_warnings() -> None:
    """Kedro 1.7 calls an OmegaConf API that warns on every config load; nothing to act on."""
    warnings.filterwarnings("ignore", message="register_new_resolver", category=UserWarning)


@dataclass(frozen=True)
class ProjectLocation:
    """Where a Kedro project is and how to open it. Picklable: workers receive it."""

    project_path: Path
    package: str | None = None  # packaged mode: an installed project package
    env: str | None = None
    conf_source: Path | None = None


def check_location(location: ProjectLocation) -> None:
    """Raise ProjectError, with what to do about it, if ``location`` is not a Kedro project."""
    if location.package is not None:
        if location.conf_source is None or not location.conf_source.is_dir():
            raise ProjectError(
                f"Packaged mode needs --conf-source pointing at the project's conf directory; "
                f"got {location.conf_source}."
            )
        return
    pyproject = location.project_path / "pyproject.toml"
    if not pyproject.is_file() or "[tool.kedro]" not in pyproject.read_text(encoding="utf-8"):
        raise ProjectError(
            f"{location.project_path} is not a Kedro project (no pyproject.toml with a "
            "[tool.kedro] table). Pass --project DIR (or set KEDRO_RUNS_PROJECT), or run "
            "from inside a project. The bundled demo: --project examples/spaceflights"
        )


def check_requirements(location: ProjectLocation) -> None:
    """Import the project's code as the service will (settings, then the pipeline
    registry and everything it imports), in this process, before anything else starts.
    Raises ProjectError: a module the project needs that is not installed in this
    environment is named, with the command that installs the project's requirements."""
    quiet_known_warnings()
    from kedro.framework.project import configure_project, pipelines
    from kedro.framework.startup import bootstrap_project

    try:
        if location.package is not None:
            configure_project(location.package)
        else:
            bootstrap_project(location.project_path)
        dict(pipelines.items())
    except Exception as error:
        raise _missing_requirement(error, location) or ProjectError(
            f"Could not open the Kedro project: {error}"
        ) from error


def _missing_requirement(error: BaseException, location: ProjectLocation) -> ProjectError | None:
    """What to install, if ``error`` is (or was raised because of) a module that is not
    installed; None otherwise, and for a missing module of the project's own package."""
    cause: BaseException | None = error
    for _ in range(20):  # a chain of causes, never a cycle
        if cause is None or isinstance(cause, ModuleNotFoundError):
            break
        cause = cause.__cause__ or cause.__context__
    if not isinstance(cause, ModuleNotFoundError) or not cause.name:
        return None
    own_package = location.package or _package_name(location.project_path)
    if own_package and cause.name.split(".")[0] == own_package:
        return None  # the project's own code is broken: no package to install
    python = sys.executable
    requirements = location.project_path / "requirements.txt"
    if location.package is None and requirements.is_file():
        install = f"{python} -m pip install -r {requirements}"
    elif location.package is None:
        install = f"{python} -m pip install -e {location.project_path}"
    else:
        install = f"{python} -m pip install {location.package}"
    return ProjectError(
        f"the project needs the module {cause.name!r}, which is not installed in the "
        f"environment kedro-runs runs in ({python}). Install the project's requirements "
        f"into that environment: {install}"
    )


def _package_name(project_path: Path) -> str | None:
    try:
        with (project_path / "pyproject.toml").open("rb") as file:
            name = tomllib.load(file).get("tool", {}).get("kedro", {}).get("package_name")
    except (OSError, tomllib.TOMLDecodeError):
        return None
    return name if isinstance(name, str) else None


def open_session(location: ProjectLocation):  # type: ignore[no-untyped-def]
    """Configure the project in this process and create its KedroServiceSession
    (``serving_mode=True``: all pipelines loaded up front). Call once per process."""
    return open_project(location)[0]


def open_project(location: ProjectLocation):  # type: ignore[no-untyped-def]
    """``open_session``, also returning the project's metadata (None in packaged mode)."""
    disable_telemetry()
    quiet_known_warnings()
    from kedro.framework.project import configure_project
    from kedro.framework.session import KedroServiceSession
    from kedro.framework.startup import bootstrap_project

    check_location(location)
    try:
        metadata = None
        if location.package is not None:
            configure_project(location.package)
        else:
            metadata = bootstrap_project(location.project_path)
        session = KedroServiceSession.create(
            project_path=location.project_path,
            env=location.env,
            conf_source=str(location.conf_source) if location.conf_source else None,
            serving_mode=True,
        )
        return session, metadata
    except Exception as error:
        raise _missing_requirement(error, location) or ProjectError(
            f"Could not open the Kedro project: {error}"
        ) from error


def use_plain_logging(level: str, capture_level: str | None = None) -> None:
    """Replace Kedro's rich console logging with one plain stderr handler at ``level``.

    Rich logging costs about 12 ms per run; a plain handler costs almost nothing.
    ``capture_level`` (workers) lets records down to that level reach other handlers
    (the run log capture) while stderr still shows only ``level`` and above.
    """
    floor = min(
        logging.getLevelName(level.upper()), logging.getLevelName((capture_level or level).upper())
    )
    logging.config.dictConfig(
        {
            "version": 1,
            "disable_existing_loggers": False,
            "formatters": {
                "plain": {
                    "class": "app.domain.redaction.RedactingFormatter",
                    "format": "%(asctime)s %(levelname)s [%(process)d] %(name)s: %(message)s",
                }
            },
            "handlers": {
                "stderr": {
                    "class": "logging.StreamHandler",
                    "formatter": "plain",
                    "level": level.upper(),
                },
            },
            "root": {"level": floor, "handlers": ["stderr"]},
            "loggers": {"kedro": {"level": floor, "propagate": True, "handlers": []}},
        }
    )


def project_commit(project_path: Path) -> str | None:
    """The git commit of the project's checkout, if it is one."""
    try:
        result = subprocess.run(
            ["git", "-C", str(project_path), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    commit = result.stdout.strip()
    return commit if result.returncode == 0 and commit else None

"""The container files without building them: hadolint finds nothing in the Dockerfile,
compose.yaml is valid under the compose specification's schema, and the Dockerfile's
promises: the healthcheck is in exec form and follows KEDRO_RUNS_PORT (tried here
against a real service on a free port, never 8000's default), and the image runs as a
numeric user."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from conftest import ServiceProcess
from support import free_port

ROOT = Path(__file__).resolve().parents[1]
DOCKERFILE = ROOT / "Dockerfile"
COMPOSE = ROOT / "compose.yaml"
TOOLS = Path(sys.executable).parent  # hadolint and check-jsonschema come with the test extra


def _tool(name: str, *arguments: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(TOOLS / name), *arguments], capture_output=True, text=True, timeout=60, check=False
    )


def _hadolint(dockerfile: Path) -> subprocess.CompletedProcess[str]:
    return _tool("hadolint", "--no-color", str(dockerfile))


def _compose_schema(compose: Path) -> subprocess.CompletedProcess[str]:
    # The compose specification's schema as check-jsonschema vendors it: no network.
    return _tool("check-jsonschema", "--builtin-schema", "vendor.compose-spec", str(compose))


def _instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined, comments dropped."""
    text = DOCKERFILE.read_text().replace("\\\n", " ")
    lines = [line.strip() for line in text.splitlines()]
    found = []
    for line in lines:
        if line and not line.startswith("#"):
            keyword, _, rest = line.partition(" ")
            found.append((keyword.upper(), rest.strip()))
    return found


def _healthcheck_command() -> list[str]:
    (arguments,) = [rest for keyword, rest in _instructions() if keyword == "HEALTHCHECK"]
    _, _, command = arguments.partition("CMD ")
    parsed = json.loads(command)  # exec form is a JSON array; shell form is not
    assert isinstance(parsed, list)
    assert all(isinstance(part, str) for part in parsed)
    return parsed


def _run_healthcheck(port: int) -> int:
    command = _healthcheck_command()
    assert command[0] == "python"
    env = {**os.environ, "KEDRO_RUNS_PORT": str(port)}
    return subprocess.run([sys.executable, *command[1:]], env=env, timeout=30).returncode


def test_the_healthcheck_follows_kedro_runs_port(service: ServiceProcess) -> None:
    assert service.port != 8000
    assert _run_healthcheck(service.port) == 0
    assert _run_healthcheck(free_port()) != 0  # nothing listens there: unhealthy


def test_the_image_runs_as_a_numeric_user() -> None:
    users = [rest for keyword, rest in _instructions() if keyword == "USER"]
    assert users, "the image must not run as root"
    user, _, group = users[-1].partition(":")
    assert user.isdigit()
    assert int(user) != 0
    assert not group or group.isdigit()


def test_hadolint_finds_nothing_in_the_dockerfile(tmp_path: Path) -> None:
    linted = _hadolint(DOCKERFILE)
    assert linted.returncode == 0, linted.stdout + linted.stderr
    # The lint can fail: an untagged base image and `cd` in RUN are flagged.
    careless = tmp_path / "Dockerfile"
    careless.write_text("FROM debian\nRUN cd /tmp && apt-get install curl\n")
    flagged = _hadolint(careless)
    assert flagged.returncode != 0
    assert "DL3006" in flagged.stdout  # always tag the image version


def test_compose_yaml_is_valid_under_the_compose_specification(tmp_path: Path) -> None:
    checked = _compose_schema(COMPOSE)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    # The check can fail: a service key the specification does not have.
    broken = tmp_path / "compose.yaml"
    broken.write_text(COMPOSE.read_text().replace("    build: .", "    biuld: .", 1))
    assert "biuld" in broken.read_text()
    refused = _compose_schema(broken)
    assert refused.returncode != 0
    assert "biuld" in refused.stdout + refused.stderr

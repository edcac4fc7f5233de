"""The Dockerfile's promises that hold without building it: the healthcheck is in exec
form and follows KEDRO_RUNS_PORT (tried here against a real service on a free port,
which is never 8000's default by chance), and the image runs as a numeric user."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from conftest import ServiceProcess
from support import free_port

DOCKERFILE = Path(__file__).resolve().parents[1] / "Dockerfile"


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

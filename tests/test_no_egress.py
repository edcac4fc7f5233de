"""No outbound network from any process of the service during runs of the demo project
(kedro-telemetry would call out when a catalog is created): an audit hook in every
process records each connect and name lookup that is not loopback."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from conftest import ServiceProcess

DEMO = Path(__file__).parents[1] / "examples" / "spaceflights"

SITECUSTOMIZE = """
import os, sys

_LOG = os.environ["EGRESS_LOG"]
_LOOPBACK = {"127.0.0.1", "::1", "localhost"}


def _write(line):
    with open(_LOG, "a") as log:
        log.write(f"{os.getpid()} {line}\\n")


def _hook(event, args):
    if event == "socket.connect" and isinstance(args[1], tuple):
        if str(args[1][0]) not in _LOOPBACK:
            _write(f"connect {args[1]!r}")
    elif event == "socket.getaddrinfo" and args[0] not in _LOOPBACK and args[0] is not None:
        _write(f"lookup {args[0]!r}")


sys.addaudithook(_hook)
_write("installed")
"""


def test_the_audit_hook_would_see_an_outbound_lookup(tmp_path: Path) -> None:
    """Control: a numeric lookup of a documentation address (no packet is sent) is seen."""
    hooks = tmp_path / "hooks"
    hooks.mkdir()
    (hooks / "sitecustomize.py").write_text(SITECUSTOMIZE)
    log = tmp_path / "egress.log"
    probe = "import socket; socket.getaddrinfo('192.0.2.1', 80, flags=socket.AI_NUMERICHOST)"
    subprocess.run(
        [sys.executable, "-c", probe],
        check=True,
        timeout=60,
        env={**os.environ, "PYTHONPATH": str(hooks), "EGRESS_LOG": str(log)},
    )
    assert "lookup '192.0.2.1'" in log.read_text()


def test_runs_of_the_demo_make_no_outbound_connections(tmp_path: Path) -> None:
    project = tmp_path / "spaceflights"
    shutil.copytree(DEMO, project, ignore=shutil.ignore_patterns("__pycache__", ".kedro-runs"))
    hooks = tmp_path / "hooks"
    hooks.mkdir()
    (hooks / "sitecustomize.py").write_text(SITECUSTOMIZE)
    log = tmp_path / "egress.log"
    env = {"PYTHONPATH": str(hooks), "EGRESS_LOG": str(log)}
    # The service must turn telemetry off by itself, whatever the caller's environment.
    saved = {
        k: os.environ.pop(k) for k in ("KEDRO_DISABLE_TELEMETRY", "DO_NOT_TRACK") if k in os.environ
    }
    try:
        service = ServiceProcess(project, workers=2, env=env).start()
    finally:
        os.environ.update(saved)
    try:
        service.wait_for_workers(2)
        run_ids = [service.submit(pipeline_names=["__default__"])["run_id"] for _ in range(20)]
        assert [service.wait(r, timeout=120)["status"] for r in run_ids] == ["succeeded"] * 20
    finally:
        service.stop()
    lines = log.read_text().splitlines()
    installed = {line.split()[0] for line in lines if line.endswith("installed")}
    assert len(installed) >= 3  # the API process and both workers were watched
    assert [line for line in lines if not line.endswith("installed")] == []

"""Shared fixtures: a copy of the test Kedro project and the real service started on it,
and the run store on each database it supports.

The service runs as a real subprocess (``python -m app serve``) on a free loopback
port, with real worker processes and a real SQLite file, so tests can kill it. The
store's contract tests take ``store`` (or ``store_url``), which runs them once on a
SQLite file and once on a fresh database of a real PostgreSQL server (tests/postgres.py).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from postgres import PostgresServer, find_server, no_server_outcome
from support import copy_project, free_port

from app.persistence.store import SqlRunStore

TERMINAL = {"succeeded", "failed", "cancelled"}


class ServiceProcess:
    """One `kedro-runs serve` process and an HTTP client for it."""

    def __init__(
        self,
        project: Path,
        *,
        workers: int = 2,
        extra_args: list[str] | None = None,
        env: dict[str, str] | None = None,
        log_path: Path | None = None,
        project_flag: bool = True,
        headers: dict[str, str] | None = None,
    ) -> None:
        self.project = project
        self.workers = workers
        self.extra_args = extra_args or []
        # A short drain, so stopping a service with a stuck run does not slow the suite.
        self.env = {"KEDRO_RUNS_DRAIN_SECONDS": "2", **(env or {})}
        self.log_path = log_path or project / "service.log"
        self.project_flag = project_flag  # False: the service finds the project by itself
        self.headers = headers or {}  # sent on every request of ``client`` (an API key)
        self.port = 0
        self.process: subprocess.Popen[bytes] | None = None
        self.client = httpx.Client(timeout=30)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 90, *, ready: bool = True) -> ServiceProcess:
        """Start the service; wait for /readyz (or, with ``ready=False``, /healthz)."""
        self.port = free_port()
        location = ["--project", str(self.project)] if self.project_flag else []
        command = [
            sys.executable,
            "-m",
            "app",
            "serve",
            *location,
            "--port",
            str(self.port),
            "--workers",
            str(self.workers),
            "--log-level",
            "warning",
            *self.extra_args,
        ]
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                command,
                stdout=log,
                stderr=subprocess.STDOUT,
                env={**os.environ, **self.env},
                cwd=self.project,
                start_new_session=True,  # its own process group: kill -9 reaches the workers
            )
        self.client = httpx.Client(base_url=self.url, timeout=30, headers=self.headers)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"service exited: {self.log_path.read_text()[-3000:]}")
            try:
                if self.client.get("/readyz" if ready else "/healthz").status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        raise TimeoutError(f"service not ready: {self.log_path.read_text()[-3000:]}")

    def wait_for_workers(self, count: int, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            response = self.client.get("/readyz")
            if response.status_code == 200 and response.json()["workers_ready"] >= count:
                return
            time.sleep(0.1)
        raise TimeoutError(f"fewer than {count} workers ready")

    def kill_hard(self) -> None:
        """SIGKILL the service and its whole process group (API and workers)."""
        assert self.process is not None
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=10)
        self.client.close()

    # -- conveniences -------------------------------------------------------------

    def submit(self, **body: Any) -> dict[str, Any]:
        response = self.client.post("/runs", json=body)
        assert response.status_code == 202, response.text
        return dict(response.json())

    def get(self, run_id: str) -> dict[str, Any]:
        response = self.client.get(f"/runs/{run_id}")
        assert response.status_code == 200, response.text
        return dict(response.json())

    def wait(
        self, run_id: str, statuses: set[str] | None = None, timeout: float = 60
    ) -> dict[str, Any]:
        wanted = statuses or TERMINAL
        deadline = time.monotonic() + timeout
        while True:
            run = self.get(run_id)
            if run["status"] in wanted:
                return run
            if time.monotonic() > deadline:
                raise TimeoutError(f"run {run_id} still {run['status']}")
            time.sleep(0.05)

    def events(self, run_id: str, after: int = 0) -> list[dict[str, Any]]:
        response = self.client.get(f"/runs/{run_id}/events", params={"after": after})
        assert response.status_code == 200, response.text
        return list(response.json()["items"])


def ledger(project: Path) -> list[str]:
    path = project / "data" / "ledger.txt"
    return path.read_text().splitlines() if path.exists() else []


@pytest.fixture(scope="session")
def shared_project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return copy_project(tmp_path_factory.mktemp("shared"))


@pytest.fixture(scope="session")
def service(shared_project: Path) -> Iterator[ServiceProcess]:
    """One service for the tests that do not need a process of their own."""
    process = ServiceProcess(
        shared_project,
        extra_args=["--cancel-grace-seconds", "2"],
        env={"KEDRO_RUNS_SSE_HEARTBEAT_SECONDS": "0.5", "KEDRO_RUNS_RUN_LOG_CAP": "200"},
    )
    process.start()
    process.wait_for_workers(2)
    yield process
    process.stop()


@pytest.fixture
def project(tmp_path: Path) -> Path:
    return copy_project(tmp_path)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """A PostgreSQL server for the session. Without one the test skips, saying why;
    under CI (``CI=true``) it fails instead."""
    server, reasons = find_server()
    if server is None:
        message, must_fail = no_server_outcome(reasons, dict(os.environ))
        if must_fail:
            pytest.fail(message)
        pytest.skip(message)
    yield server
    server.stop()


@pytest.fixture
def postgres_url(postgres_server: PostgresServer) -> Iterator[str]:
    """The URL of a new, empty database of its own, dropped after the test."""
    with postgres_server.database() as url:
        yield url


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An empty run store's URL: a SQLite file, then a PostgreSQL database."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'state' / 'runs.db'}"
    return str(request.getfixturevalue("postgres_url"))


@pytest.fixture
def store(store_url: str) -> Iterator[SqlRunStore]:
    """A run store on ``store_url``, closed after the test."""
    opened = SqlRunStore(store_url)
    yield opened
    opened.close()

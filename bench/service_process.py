"""One kedro-runs service as a subprocess, for the benchmarks (no measurements here).

``Service`` starts ``python -m app serve`` on a free 127.0.0.1 port in a process group of
its own, waits until it is ready, and stops it: SIGTERM, then SIGKILL of the whole group
(the API process and its workers). ``source`` picks the tree whose ``app`` package runs,
so a benchmark can start the service of an older commit with the same interpreter.
"""

from __future__ import annotations

import contextlib
import math
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from pathlib import Path

import httpx

REPO_ROOT = Path(__file__).resolve().parents[1]
# The tests' plain helpers (copying the test project, free ports, process groups).
sys.path.insert(0, str(REPO_ROOT / "tests"))
from support import free_port, process_group  # noqa: E402

HOST = "127.0.0.1"  # loopback only, always
ACTIVE = ("queued", "running", "cancelling")
# Start-up INFO lines are expected (Kedro logs before the level is applied); these not.
NOTEWORTHY = ("WARNING", "ERROR", "CRITICAL", "Traceback")


class Service:
    """One ``python -m app serve`` subprocess in its own process group.

    ``source``: the directory holding the ``app`` package to run (default: this tree);
    another one is put first on ``PYTHONPATH`` and is the working directory, so its
    ``app`` wins over the installed one. ``env``: extra environment variables
    (``KEDRO_RUNS_*``). ``ready_workers``: the ``workers_ready`` of ``/readyz`` that
    means ready (default ``workers``; in cluster mode every replica counts the workers of
    all of them)."""

    def __init__(
        self,
        project: Path,
        workers: int,
        log_path: Path,
        *,
        source: Path = REPO_ROOT,
        env: Mapping[str, str] | None = None,
        ready_workers: int | None = None,
    ) -> None:
        self.project = project
        self.workers = workers
        self.log_path = log_path
        self.source = source
        self.env = dict(env or {})
        self.ready_workers = workers if ready_workers is None else ready_workers
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    def client(self, timeout: float = 10.0) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=timeout)

    def log_tail(self, chars: int = 3000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return ""

    def noteworthy_log_lines(self) -> list[str]:
        """The log's warning and error lines (and tracebacks), so far."""
        try:
            log = self.log_path.read_text(errors="replace")
        except OSError:
            return []
        return [line for line in log.splitlines() if any(word in line for word in NOTEWORTHY)]

    def environment(self) -> dict[str, str]:
        """The environment the service runs with."""
        environment = {**os.environ, **self.env}
        if self.source != REPO_ROOT:
            inherited = environment.get("PYTHONPATH")
            environment["PYTHONPATH"] = os.pathsep.join(
                [str(self.source), *([inherited] if inherited else [])]
            )
        return environment

    def start(self, timeout: float) -> float:
        """Start and wait until it is ready (see ``wait_ready``); returns the seconds it took."""
        started = time.monotonic()
        self.launch()
        self.wait_ready(timeout)
        return time.monotonic() - started

    def launch(self) -> None:
        """Start the process, without waiting for it."""
        command = [
            sys.executable,
            "-m",
            "app",
            "serve",
            "--project",
            str(self.project),
            "--host",
            HOST,
            "--port",
            str(self.port),
            "--workers",
            str(self.workers),
            "--log-level",
            "warning",
        ]
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                command,
                cwd=self.source,
                env=self.environment(),
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )

    def wait_ready(self, timeout: float) -> None:
        """Wait until ``/readyz`` counts ``ready_workers``. Raises RuntimeError if the
        process exits (or was never launched), TimeoutError if it is not ready in time."""
        if self.process is None:
            raise RuntimeError("the service was not launched")
        deadline = time.monotonic() + timeout
        with self.client(timeout=5.0) as client:
            while time.monotonic() < deadline:
                if self.process.poll() is not None:
                    raise RuntimeError(
                        f"the service exited with code {self.process.returncode}:"
                        f"\n{self.log_tail()}"
                    )
                with contextlib.suppress(httpx.HTTPError, ValueError):
                    response = client.get("/readyz")
                    if (
                        response.status_code == 200
                        and response.json().get("workers_ready", 0) >= self.ready_workers
                    ):
                        return
                time.sleep(0.1)
        raise TimeoutError(
            f"the service was not ready with {self.ready_workers} workers within "
            f"{timeout:g} s:\n{self.log_tail()}"
        )

    def stop(self, grace: float = 35.0) -> None:
        """SIGTERM, wait up to ``grace`` s, then SIGKILL its process group (API and workers)."""
        process = self.process
        if process is None:
            return
        if process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                print(
                    f"  ! the service did not stop within {grace:.0f} s of SIGTERM; killing it",
                    flush=True,
                )
                # The leader is not reaped yet, so its pid still names our group.
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(process.pid, signal.SIGKILL)
                with contextlib.suppress(subprocess.TimeoutExpired):
                    process.wait(timeout=10)
        # A worker that outlived the API process keeps the group (and so its id) alive;
        # only then is the group still ours to kill.
        if self._group_members():
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(process.pid, signal.SIGKILL)

    def _group_members(self) -> dict[int, list[str]]:
        """The processes of the service's process group (see ``support.process_group``)."""
        return process_group(self.process.pid) if self.process is not None else {}

    def cpu_seconds(self) -> tuple[float, float]:
        """CPU seconds used so far by (the API process, the rest of its process group:
        the workers). Reads /proc; (nan, nan) where there is none."""
        if self.process is None or not Path("/proc").is_dir():
            return math.nan, math.nan
        ticks = float(os.sysconf("SC_CLK_TCK"))
        api = others = 0.0
        for pid, fields in self._group_members().items():
            used = (int(fields[11]) + int(fields[12])) / ticks  # utime + stime
            if pid == self.process.pid:
                api += used
            else:
                others += used
        return api, others

    def wait_until_idle(self, timeout: float) -> bool:
        """Wait until no run is queued, running or cancelling; False on timeout."""
        deadline = time.monotonic() + timeout
        with self.client() as client:
            while time.monotonic() < deadline:
                with contextlib.suppress(httpx.HTTPError, ValueError, KeyError):
                    response = client.get("/runs", params={"status": list(ACTIVE), "limit": 1})
                    if response.status_code == 200 and not response.json()["items"]:
                        return True
                time.sleep(0.2)
        return False

    def count_not_succeeded(self) -> int:
        """How many runs ended failed or cancelled (at most 200 counted)."""
        with self.client() as client:
            response = client.get("/runs", params={"status": ["failed", "cancelled"], "limit": 200})
            response.raise_for_status()
            return len(response.json()["items"])


@contextlib.contextmanager
def running_services(services: list[Service], start_timeout: float) -> Iterator[float]:
    """Start ``services`` together (replicas race for an empty database's migrations, as
    they would in production) and yield the seconds until the last was ready; every one
    that was started is stopped on the way out, on error or Ctrl-C too."""
    began = time.monotonic()
    try:
        for service in services:
            service.launch()
        deadline = began + start_timeout
        for service in services:
            service.wait_ready(deadline - time.monotonic())
        yield time.monotonic() - began
    finally:
        for service in services:
            service.stop()

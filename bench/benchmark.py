#!/usr/bin/env python
"""Benchmark of kedro-runs: what the HTTP service costs on top of a plain ``session.run``.

It starts the real service (``python -m app serve``) as a subprocess on a free
127.0.0.1 port, on a temporary copy of the test project (``tests/project``), and
measures, with the trivial one-node ``noop`` pipeline:

1. Submit latency: 16 concurrent clients POST ``/runs`` in a loop (at most
   ``--submit-total`` submissions or ``--phase-seconds``); p50/p99/max of the POST
   round trip. The runs are then drained (bounded) so they do not skew what follows.
2. Throughput at concurrency 8: 8 clients each submit a run and wait for it with a
   long poll (``GET /runs/{id}?wait=30``), then submit the next (at most
   ``--runs`` runs or ``--phase-seconds``). Runs/s seen by the clients, runs/s from the
   server's own timestamps (count / (last finished_at - first queued_at)), and the
   p50/p99 of the per-run latency (submit -> client sees the terminal status), and
   the CPU time per run of the API process, the workers and the clients (Linux).
3. End-to-end latency of one run at a time (``--e2e-runs``): from just before the
   POST (``time.time()``) to the ``at`` of the run's ``run_succeeded`` event (same
   machine clock), and as the client sees it waiting with a long poll
   (``GET /runs/{id}?wait=30``); plus where the time goes, from the run's own
   timestamps and events. Then the same polling every 2 ms: on a small machine such
   polls compete for the CPU with the run they watch.
4. In-process ``KedroServiceSession.run`` of the same pipeline in a separate Python
   process (after the service is stopped, so nothing competes for the CPU): 5
   warm-up runs, then ``--inprocess-runs`` timed runs.

It ends with a summary table and two ratios: throughput against 31 runs/s (Kedro's
own server at concurrency 8, a reference figure) and end-to-end p50 / in-process p50
(target <= 1.5).

Percentiles are linearly interpolated (p99 of 50 samples is close to the max). On a
2-core machine the service, its workers and these clients share two cores, so
figures move by 10-30 % from one run to the next; compare several runs.

Every loop is bounded in count and in time. The service is always stopped at the
end (SIGTERM, then SIGKILL of its process group), on error or Ctrl-C too.

Run from the repository root, with the project's venv active::

    python bench/benchmark.py                      # workers = os.cpu_count()
    python bench/benchmark.py --workers 4 --runs 300
    python bench/benchmark.py --help

This is a benchmark that prints figures, not a test: it asserts nothing.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import Any

import httpx

REPO_ROOT = Path(__file__).resolve().parents[1]
# The tests' plain helpers (copying the test project, free ports, process groups).
sys.path.insert(0, str(REPO_ROOT / "tests"))
from support import copy_project, free_port, process_group  # noqa: E402

HOST = "127.0.0.1"  # loopback only, always
PIPELINE = "noop"
RUN_BODY: dict[str, Any] = {"pipeline_names": [PIPELINE]}
TERMINAL = frozenset({"succeeded", "failed", "cancelled"})
ACTIVE = ("queued", "running", "cancelling")

KEDRO_SERVER_RPS_AT_8 = 31.0  # reference: Kedro's own server, concurrency 8
E2E_RATIO_TARGET = 1.5  # end-to-end p50 / in-process p50

SUBMIT_CLIENTS = 16
THROUGHPUT_CLIENTS = 8
THROUGHPUT_POLL_S = 0.0  # 0: long poll (GET /runs/{id}?wait=...)
LONG_POLL_WAIT_S = 30
E2E_POLL_S = 0.0  # 0: long poll, as a client waiting for one run should
E2E_LIGHT_POLL_S = 0.002  # tight polling, for comparison
PER_RUN_TIMEOUT_S = 30.0  # one noop run taking longer than this counts as a timeout
INPROCESS_WARMUP = 5


# -- results -------------------------------------------------------------------------


@dataclass(frozen=True)
class LatencyStats:
    """Summary of a sample of durations, in milliseconds."""

    count: int
    p50_ms: float
    p99_ms: float
    max_ms: float
    mean_ms: float

    @classmethod
    def of(cls, seconds: Sequence[float]) -> LatencyStats:
        if not seconds:
            nan = math.nan
            return cls(0, nan, nan, nan, nan)
        ms = sorted(s * 1000.0 for s in seconds)
        return cls(len(ms), percentile(ms, 50), percentile(ms, 99), ms[-1], sum(ms) / len(ms))

    def short(self) -> str:
        return (
            f"p50 {self.p50_ms:7.2f} ms  p99 {self.p99_ms:7.2f} ms  "
            f"max {self.max_ms:7.2f} ms  (n={self.count})"
        )


@dataclass(frozen=True)
class CpuPerRun:
    """CPU time spent per completed run, by process, in ms (Linux /proc; nan elsewhere)."""

    api_ms: float  # the service's API process
    workers_ms: float  # the rest of the service's process group: its workers (and the
    # multiprocessing resource tracker, which uses next to nothing)
    client_ms: float  # this benchmark process (its HTTP clients)


@dataclass(frozen=True)
class SubmitResult:
    latency: LatencyStats
    accepted: int
    errors: dict[str, int]
    elapsed_s: float
    drained: bool
    drain_s: float
    cpu: CpuPerRun  # submission and execution of these runs, nobody polling

    @property
    def submits_per_s(self) -> float:
        return self.accepted / self.elapsed_s if self.elapsed_s > 0 else math.nan


@dataclass(frozen=True)
class ThroughputResult:
    completed: int  # runs the clients saw reach a terminal status
    succeeded: int
    errors: dict[str, int]
    window_s: float
    client_rps: float
    server_rps: float
    latency: LatencyStats
    cpu: CpuPerRun
    get_round_trip: LatencyStats  # the clients' polls

    @property
    def gets_per_run(self) -> float:
        return self.get_round_trip.count / self.completed if self.completed else math.nan


@dataclass(frozen=True)
class EndToEndResult:
    poll_s: float
    to_terminal_event: LatencyStats  # client start -> `at` of run_succeeded
    client_observed: LatencyStats  # client start -> poll sees terminal
    errors: dict[str, int]
    post_round_trip: LatencyStats  # one client, no other load
    get_round_trip: LatencyStats  # the polls, while the run executes
    # Where the time goes (p50, ms), from the run's own timestamps and events.
    post_to_queued_ms: float  # client start -> queued_at (validation, planning)
    queued_to_started_ms: float  # queued_at -> started_at (dispatch claim)
    started_to_node_ms: float  # started_at -> node_started (hand-over, session.run set-up)
    node_ms: float  # node_started -> node_completed
    node_to_succeeded_ms: float  # node_completed -> run_succeeded (session.run tear-down)
    succeeded_to_seen_ms: float  # run_succeeded -> a poll sees it (recording + polling)


@dataclass(frozen=True)
class InProcessResult:
    latency: LatencyStats
    error: str | None = None


@dataclass
class Report:
    workers: int
    startup_s: float = math.nan
    submit: SubmitResult | None = None
    throughput: ThroughputResult | None = None
    e2e: EndToEndResult | None = None
    e2e_light: EndToEndResult | None = None  # the same with light polling
    inprocess: InProcessResult | None = None
    not_succeeded_runs: int | None = None
    problems: list[str] = field(default_factory=list)


# -- helpers ---------------------------------------------------------------------------


def percentile(sorted_values: Sequence[float], q: float) -> float:
    """The q-th percentile of already sorted values, linearly interpolated."""
    if not sorted_values:
        return math.nan
    rank = (len(sorted_values) - 1) * q / 100.0
    low = math.floor(rank)
    high = min(low + 1, len(sorted_values) - 1)
    return sorted_values[low] + (sorted_values[high] - sorted_values[low]) * (rank - low)


def median(values: Sequence[float]) -> float:
    return percentile(sorted(values), 50)


def parse_time(text: str) -> float:
    """An ISO 8601 timestamp from the service as a POSIX time (naive means UTC)."""
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


class CpuMeter:
    """CPU used by the service's processes and by this process between start and stop."""

    def __init__(self, service: Service) -> None:
        self._service = service
        self._api, self._workers = service.cpu_seconds()
        self._client = time.process_time()

    def per_run(self, runs: int) -> CpuPerRun:
        api, workers = self._service.cpu_seconds()
        runs = max(runs, 1)
        return CpuPerRun(
            api_ms=(api - self._api) * 1000 / runs,
            workers_ms=(workers - self._workers) * 1000 / runs,
            client_ms=(time.process_time() - self._client) * 1000 / runs,
        )


class ErrorTally:
    """Thread-safe count of errors by kind."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.counts: dict[str, int] = {}

    def add(self, kind: str) -> None:
        with self._lock:
            self.counts[kind] = self.counts.get(kind, 0) + 1


class Tickets:
    """Hands out at most ``total`` tickets, and none after ``deadline`` (monotonic)."""

    def __init__(self, total: int, deadline: float) -> None:
        self._lock = threading.Lock()
        self._left = total
        self.deadline = deadline

    def take(self) -> bool:
        with self._lock:
            if self._left <= 0 or time.monotonic() >= self.deadline:
                return False
            self._left -= 1
            return True

    def close(self) -> None:
        """Hand out no more tickets."""
        with self._lock:
            self._left = 0


def run_clients(count: int, tickets: Tickets, body: Callable[[int], None]) -> None:
    """Run ``body(index)`` on ``count`` threads, which loop while ``tickets`` last, and
    wait for all of them. On an error or an interrupt no more tickets are handed out,
    so the threads stop after their current request."""
    with ThreadPoolExecutor(count, thread_name_prefix="bench-client") as pool:
        try:
            for future in [pool.submit(body, index) for index in range(count)]:
                future.result()
        except BaseException:
            tickets.close()
            raise


# -- the service -------------------------------------------------------------------------


class Service:
    """One ``python -m app serve`` subprocess in its own process group."""

    def __init__(self, project: Path, workers: int, log_path: Path) -> None:
        self.project = project
        self.workers = workers
        self.log_path = log_path
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

    def start(self, timeout: float) -> float:
        """Start and wait until ``workers_ready == workers``; returns the seconds it took."""
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
        started = time.monotonic()
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                command,
                cwd=REPO_ROOT,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        deadline = started + timeout
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
                        and response.json().get("workers_ready") == self.workers
                    ):
                        return time.monotonic() - started
                time.sleep(0.1)
        raise TimeoutError(
            f"the service was not ready with {self.workers} workers within "
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
def running_service(
    project: Path, workers: int, log_path: Path, start_timeout: float
) -> Iterator[tuple[Service, float]]:
    service = Service(project, workers, log_path)
    try:
        startup = service.start(start_timeout)
        yield service, startup
    finally:
        service.stop()


# -- measurements -----------------------------------------------------------------------


def measure_submit_latency(
    service: Service, total: int, seconds: float, drain_timeout: float
) -> SubmitResult:
    """16 clients POST /runs in a loop; then wait (bounded) for those runs to end."""
    tickets = Tickets(total, time.monotonic() + seconds)
    latencies: list[float] = []
    lock = threading.Lock()
    errors = ErrorTally()

    def client_loop(_: int) -> None:
        with service.client() as client:
            while tickets.take():
                started = time.perf_counter()
                try:
                    response = client.post("/runs", json=RUN_BODY)
                except httpx.HTTPError as error:
                    errors.add(type(error).__name__)
                    continue
                elapsed = time.perf_counter() - started
                if response.status_code != 202:
                    errors.add(f"HTTP {response.status_code}")
                    continue
                with lock:
                    latencies.append(elapsed)

    meter = CpuMeter(service)
    began = time.monotonic()
    run_clients(SUBMIT_CLIENTS, tickets, client_loop)
    elapsed = time.monotonic() - began
    drain_began = time.monotonic()
    drained = service.wait_until_idle(drain_timeout)
    drain_s = time.monotonic() - drain_began
    return SubmitResult(
        LatencyStats.of(latencies),
        len(latencies),
        errors.counts,
        elapsed,
        drained,
        drain_s,
        meter.per_run(len(latencies)),
    )


def _poll_until_terminal(
    client: httpx.Client,
    run_id: str,
    interval: float,
    deadline: float,
    round_trips: list[float] | None = None,
) -> dict[str, Any] | None:
    """GET the run every ``interval`` s until it ends; None if ``deadline`` passes first.
    An ``interval`` of 0 means a long poll: ``GET /runs/{id}?wait=30`` answers when the
    run ends. Appends each GET's round trip (s) to ``round_trips`` if given."""
    params = {"wait": LONG_POLL_WAIT_S} if interval == 0 else None
    while True:
        sent = time.perf_counter()
        response = client.get(f"/runs/{run_id}", params=params)
        if round_trips is not None:
            round_trips.append(time.perf_counter() - sent)
        response.raise_for_status()
        run: dict[str, Any] = response.json()
        if run["status"] in TERMINAL:
            return run
        if time.monotonic() >= deadline:
            return None
        time.sleep(interval)


def _poll_text(interval: float) -> str:
    if interval == 0:
        return f"long poll (GET /runs/{{id}}?wait={LONG_POLL_WAIT_S})"
    return f"polling every {interval * 1000:g} ms"


def measure_throughput(service: Service, total: int, seconds: float) -> ThroughputResult:
    """8 clients: submit, wait for the run with a long poll, repeat."""
    tickets = Tickets(total, time.monotonic() + seconds)
    lock = threading.Lock()
    errors = ErrorTally()
    latencies: list[float] = []
    finished_runs: list[dict[str, Any]] = []
    last_done = [0.0]
    gets: list[float] = []  # list.append is atomic: shared by the client threads

    def client_loop(_: int) -> None:
        with service.client() as client:
            while tickets.take():
                started = time.perf_counter()
                try:
                    response = client.post("/runs", json=RUN_BODY)
                    if response.status_code != 202:
                        errors.add(f"POST HTTP {response.status_code}")
                        continue
                    run = _poll_until_terminal(
                        client,
                        response.json()["run_id"],
                        THROUGHPUT_POLL_S,
                        time.monotonic() + PER_RUN_TIMEOUT_S,
                        gets,
                    )
                except httpx.HTTPError as error:
                    errors.add(type(error).__name__)
                    continue
                if run is None:
                    errors.add("run timeout")
                    continue
                done = time.perf_counter()
                with lock:
                    latencies.append(done - started)
                    finished_runs.append(run)
                    last_done[0] = max(last_done[0], done)

    meter = CpuMeter(service)
    began = time.perf_counter()
    run_clients(THROUGHPUT_CLIENTS, tickets, client_loop)
    window = (last_done[0] - began) if finished_runs else math.nan
    cpu = meter.per_run(len(finished_runs))
    succeeded = sum(1 for run in finished_runs if run["status"] == "succeeded")
    for run in finished_runs:
        if run["status"] != "succeeded":
            errors.add(f"run {run['status']}")
    with_times = [run for run in finished_runs if run["timestamps"]["finished_at"]]
    server_rps = math.nan
    if with_times:
        first_queued = min(parse_time(r["timestamps"]["queued_at"]) for r in with_times)
        last_finished = max(parse_time(r["timestamps"]["finished_at"]) for r in with_times)
        if last_finished > first_queued:
            server_rps = len(with_times) / (last_finished - first_queued)
    return ThroughputResult(
        completed=len(finished_runs),
        succeeded=succeeded,
        errors=errors.counts,
        window_s=window,
        client_rps=len(finished_runs) / window if finished_runs else 0.0,
        server_rps=server_rps,
        latency=LatencyStats.of(latencies),
        cpu=cpu,
        get_round_trip=LatencyStats.of(gets),
    )


def measure_end_to_end(
    service: Service, runs: int, seconds: float, poll_s: float
) -> EndToEndResult:
    """One run at a time: POST, poll every ``poll_s`` until terminal, read its events."""
    to_event: list[float] = []
    observed: list[float] = []
    posts: list[float] = []
    gets: list[float] = []
    post_to_queued: list[float] = []
    queued_to_started: list[float] = []
    started_to_node: list[float] = []
    node: list[float] = []
    node_to_succeeded: list[float] = []
    succeeded_to_seen: list[float] = []
    errors = ErrorTally()
    deadline = time.monotonic() + seconds
    with service.client() as client:
        for _ in range(runs):
            if time.monotonic() >= deadline:
                break
            wall_start = time.time()
            started = time.perf_counter()
            try:
                response = client.post("/runs", json=RUN_BODY)
                posted = time.perf_counter() - started
                if response.status_code != 202:
                    errors.add(f"POST HTTP {response.status_code}")
                    continue
                run_id = response.json()["run_id"]
                run = _poll_until_terminal(
                    client, run_id, poll_s, time.monotonic() + PER_RUN_TIMEOUT_S, gets
                )
                seen = time.perf_counter()
                if run is None:
                    errors.add("run timeout")
                    continue
                if run["status"] != "succeeded":
                    errors.add(f"run {run['status']}")
                    continue
                events = client.get(f"/runs/{run_id}/events")
                events.raise_for_status()
            except httpx.HTTPError as error:
                errors.add(type(error).__name__)
                continue
            items = events.json()["items"]
            at = {item["type"]: parse_time(item["at"]) for item in items}  # one node: unique
            if not items or items[-1]["type"] != "run_succeeded":
                errors.add(f"last event {items[-1]['type'] if items else 'missing'}")
                continue
            terminal_at = at["run_succeeded"]
            stamps = run["timestamps"]
            queued_at = parse_time(stamps["queued_at"])
            started_at = parse_time(stamps["started_at"])
            to_event.append(terminal_at - wall_start)
            observed.append(seen - started)
            posts.append(posted)
            post_to_queued.append(queued_at - wall_start)
            queued_to_started.append(started_at - queued_at)
            started_to_node.append(at.get("node_started", math.nan) - started_at)
            node.append(at.get("node_completed", math.nan) - at.get("node_started", math.nan))
            node_to_succeeded.append(terminal_at - at.get("node_completed", math.nan))
            succeeded_to_seen.append((seen - started) - (terminal_at - wall_start))
    return EndToEndResult(
        poll_s=poll_s,
        to_terminal_event=LatencyStats.of(to_event),
        client_observed=LatencyStats.of(observed),
        errors=errors.counts,
        post_round_trip=LatencyStats.of(posts),
        get_round_trip=LatencyStats.of(gets),
        post_to_queued_ms=median(post_to_queued) * 1000,
        queued_to_started_ms=median(queued_to_started) * 1000,
        started_to_node_ms=median(started_to_node) * 1000,
        node_ms=median(node) * 1000,
        node_to_succeeded_ms=median(node_to_succeeded) * 1000,
        succeeded_to_seen_ms=median(succeeded_to_seen) * 1000,
    )


# Runs in its own interpreter: argv = project, warm-up count, timed count, time budget.
_INPROCESS_SCRIPT = textwrap.dedent("""
    import os
    os.environ["KEDRO_DISABLE_TELEMETRY"] = "1"  # before kedro is imported
    os.environ["DO_NOT_TRACK"] = "1"
    import json, logging.config, sys, time, warnings
    from pathlib import Path

    project = Path(sys.argv[1])
    warmup, runs, budget = int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
    # The service's workers silence this one OmegaConf warning too.
    warnings.filterwarnings("ignore", message="register_new_resolver", category=UserWarning)
    from kedro.framework.session import KedroServiceSession
    from kedro.framework.startup import bootstrap_project

    bootstrap_project(project)
    session = KedroServiceSession.create(project_path=project, serving_mode=True)
    logging.config.dictConfig({
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
        "handlers": {"stderr": {"class": "logging.StreamHandler", "formatter": "plain"}},
        "root": {"level": "WARNING", "handlers": ["stderr"]},
        "loggers": {"kedro": {"level": "WARNING", "propagate": True, "handlers": []}},
    })
    deadline = time.monotonic() + budget
    for _ in range(warmup):
        session.run(pipeline_names=["noop"])
    times = []
    for _ in range(runs):
        if time.monotonic() >= deadline:
            break
        started = time.perf_counter()
        session.run(pipeline_names=["noop"])
        times.append(time.perf_counter() - started)
    session.close()
    print("BENCH_RESULT " + json.dumps({"times_s": times}), flush=True)
""")


def measure_inprocess(project: Path, runs: int, seconds: float) -> InProcessResult:
    """``session.run`` timed inside a fresh Python process on its own project copy."""
    env = {**os.environ, "KEDRO_DISABLE_TELEMETRY": "1", "DO_NOT_TRACK": "1"}
    command = [
        sys.executable,
        "-c",
        _INPROCESS_SCRIPT,
        str(project),
        str(INPROCESS_WARMUP),
        str(runs),
        str(seconds),
    ]
    try:
        completed = subprocess.run(
            command,
            cwd=project,
            env=env,
            capture_output=True,
            text=True,
            timeout=seconds + 90,
            check=False,
        )
    except subprocess.TimeoutExpired:  # subprocess.run kills the child
        return InProcessResult(LatencyStats.of([]), "timed out")
    for line in reversed(completed.stdout.splitlines()):
        if line.startswith("BENCH_RESULT "):
            times = json.loads(line.removeprefix("BENCH_RESULT "))["times_s"]
            return InProcessResult(LatencyStats.of(times))
    return InProcessResult(
        LatencyStats.of([]), f"exit code {completed.returncode}: {completed.stderr[-2000:]}"
    )


# -- output ------------------------------------------------------------------------------


def _errors_text(errors: dict[str, int]) -> str:
    return ", ".join(f"{kind} x{count}" for kind, count in sorted(errors.items())) or "none"


def print_submit(result: SubmitResult) -> None:
    print(f"  POST /runs round trip: {result.latency.short()}")
    print(
        f"  accepted {result.accepted} in {result.elapsed_s:.2f} s "
        f"({result.submits_per_s:.1f} submissions/s); errors: {_errors_text(result.errors)}"
    )
    state = "drained" if result.drained else "NOT drained (timeout)"
    print(f"  backlog {state} in {result.drain_s:.2f} s")
    print(
        f"  CPU per run (submission + execution, no polling): API process "
        f"{result.cpu.api_ms:.1f} ms, workers {result.cpu.workers_ms:.1f} ms",
        flush=True,
    )


def print_throughput(result: ThroughputResult) -> None:
    print(
        f"  completed {result.completed} runs ({result.succeeded} succeeded) in "
        f"{result.window_s:.2f} s; errors: {_errors_text(result.errors)}"
    )
    print(f"  throughput (client): {result.client_rps:.1f} runs/s")
    print(f"  throughput (server timestamps): {result.server_rps:.1f} runs/s")
    print(f"  per-run latency (submit -> client sees terminal): {result.latency.short()}")
    print(
        f"  GET /runs/{{id}} polls: {result.gets_per_run:.1f} per run, round trip "
        f"{result.get_round_trip.short()}"
    )
    print(
        f"  CPU per run: API process {result.cpu.api_ms:.1f} ms, workers "
        f"{result.cpu.workers_ms:.1f} ms, benchmark clients {result.cpu.client_ms:.1f} ms",
        flush=True,
    )


def print_e2e(result: EndToEndResult) -> None:
    print(f"  {_poll_text(result.poll_s)}")
    print(f"  client start -> run_succeeded event: {result.to_terminal_event.short()}")
    print(f"  client start -> client sees terminal: {result.client_observed.short()}")
    print(f"  POST round trip: {result.post_round_trip.short()}")
    print(f"  GET /runs/{{id}} round trip while polling: {result.get_round_trip.short()}")
    print(
        "  p50 breakdown (ms): "
        f"client start->queued_at {result.post_to_queued_ms:.2f} | "
        f"queued->started {result.queued_to_started_ms:.2f} | "
        f"started->node_started {result.started_to_node_ms:.2f} | "
        f"node {result.node_ms:.2f} | "
        f"node_completed->run_succeeded {result.node_to_succeeded_ms:.2f} | "
        f"run_succeeded->seen by client {result.succeeded_to_seen_ms:.2f}"
    )
    print(f"  errors: {_errors_text(result.errors)}", flush=True)


def print_inprocess(result: InProcessResult) -> None:
    if result.error:
        print(f"  FAILED: {result.error}")
    print(f"  session.run: {result.latency.short()}", flush=True)


def _ratio(numerator: float, denominator: float) -> float:
    return numerator / denominator if denominator and not math.isnan(denominator) else math.nan


def print_summary(report: Report) -> None:
    rows: list[tuple[str, str]] = [
        ("workers", str(report.workers)),
        ("service start-up (to all workers ready)", f"{report.startup_s:.2f} s"),
    ]
    if report.submit:
        s = report.submit
        rows += [
            (
                "submit latency p50 / p99 / max (16 clients)",
                f"{s.latency.p50_ms:.2f} / {s.latency.p99_ms:.2f} / {s.latency.max_ms:.2f} ms",
            ),
            ("submissions accepted", f"{s.accepted} ({s.submits_per_s:.1f}/s)"),
            (
                "CPU per run, no polling: API / workers",
                f"{s.cpu.api_ms:.1f} / {s.cpu.workers_ms:.1f} ms",
            ),
        ]
    if report.throughput:
        t = report.throughput
        rows += [
            ("throughput, concurrency 8 (client)", f"{t.client_rps:.1f} runs/s"),
            ("throughput, concurrency 8 (server timestamps)", f"{t.server_rps:.1f} runs/s"),
            (
                "per-run latency p50 / p99 at concurrency 8",
                f"{t.latency.p50_ms:.2f} / {t.latency.p99_ms:.2f} ms",
            ),
            (
                f"CPU per run at conc. 8 ({_poll_text(THROUGHPUT_POLL_S)}): API/workers/clients",
                f"{t.cpu.api_ms:.1f} / {t.cpu.workers_ms:.1f} / {t.cpu.client_ms:.1f} ms",
            ),
        ]
    if report.e2e:
        e = report.e2e
        poll = _poll_text(e.poll_s)
        rows += [
            (
                f"end-to-end p50 / p99 (to run_succeeded event, {poll})",
                f"{e.to_terminal_event.p50_ms:.2f} / {e.to_terminal_event.p99_ms:.2f} ms",
            ),
            (
                f"end-to-end p50 / p99 (client-observed, {poll})",
                f"{e.client_observed.p50_ms:.2f} / {e.client_observed.p99_ms:.2f} ms",
            ),
        ]
    if report.e2e_light:
        e = report.e2e_light
        rows += [
            (
                f"end-to-end p50 / p99 (to run_succeeded event, {_poll_text(e.poll_s)})",
                f"{e.to_terminal_event.p50_ms:.2f} / {e.to_terminal_event.p99_ms:.2f} ms",
            ),
            (
                f"end-to-end p50 / p99 (client-observed, {_poll_text(e.poll_s)})",
                f"{e.client_observed.p50_ms:.2f} / {e.client_observed.p99_ms:.2f} ms",
            ),
        ]
    if report.inprocess:
        i = report.inprocess
        rows.append(
            (
                "in-process session.run p50 / p99",
                f"{i.latency.p50_ms:.2f} / {i.latency.p99_ms:.2f} ms",
            )
        )
    if report.not_succeeded_runs is not None:
        rows.append(
            ("runs that ended failed/cancelled (whole benchmark)", str(report.not_succeeded_runs))
        )
    if report.throughput:
        rows.append(
            (
                f"throughput / {KEDRO_SERVER_RPS_AT_8:g} runs/s (Kedro server, conc. 8)",
                f"{_ratio(report.throughput.client_rps, KEDRO_SERVER_RPS_AT_8):.2f}x",
            )
        )
    if report.e2e and report.inprocess:
        base = report.inprocess.latency.p50_ms
        ratio = _ratio(report.e2e.to_terminal_event.p50_ms, base)
        verdict = "meets" if ratio <= E2E_RATIO_TARGET else "MISSES"
        rows.append(
            (
                f"end-to-end p50 / in-process p50 (target <= {E2E_RATIO_TARGET:g})",
                f"{ratio:.2f} ({verdict} target)",
            )
        )
        rows.append(
            (
                "  same, client-observed end-to-end",
                f"{_ratio(report.e2e.client_observed.p50_ms, base):.2f}",
            )
        )
        if report.e2e_light:
            rows.append(
                (
                    f"  same, {_poll_text(report.e2e_light.poll_s)}",
                    f"{_ratio(report.e2e_light.to_terminal_event.p50_ms, base):.2f}",
                )
            )
    width = max(len(name) for name, _ in rows)
    print("\n== Summary " + "=" * (width + 12))
    for name, value in rows:
        print(f"  {name.ljust(width)}  {value}")
    for problem in report.problems:
        print(f"  ! {problem}")
    sys.stdout.flush()


# -- main ----------------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument(
        "--workers",
        type=int,
        default=os.cpu_count() or 1,
        help="worker processes of the service (default: os.cpu_count())",
    )
    parser.add_argument(
        "--runs", type=int, default=200, help="runs in the throughput measurement (default 200)"
    )
    parser.add_argument(
        "--submit-total",
        type=int,
        default=400,
        help="submissions in the submit-latency measurement (default 400)",
    )
    parser.add_argument(
        "--e2e-runs",
        type=int,
        default=50,
        help="sequential runs in the end-to-end measurement (default 50)",
    )
    parser.add_argument(
        "--inprocess-runs",
        type=int,
        default=50,
        help="timed in-process session.run calls (default 50)",
    )
    parser.add_argument(
        "--phase-seconds",
        type=float,
        default=30.0,
        help="time bound of each measurement (default 30)",
    )
    parser.add_argument(
        "--drain-timeout",
        type=float,
        default=60.0,
        help="how long to wait for submitted runs to end (default 60)",
    )
    parser.add_argument(
        "--start-timeout",
        type=float,
        default=120.0,
        help="how long to wait for the service to be ready (default 120)",
    )
    parser.add_argument(
        "--keep-temp",
        action="store_true",
        help="keep the temporary directory (project copies, service log)",
    )
    arguments = parser.parse_args(argv)
    for name in ("workers", "runs", "submit_total", "e2e_runs", "inprocess_runs"):
        if getattr(arguments, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1")
    return arguments


def _raise_on_sigterm(signum: int, _frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)  # so the finally blocks stop the service


def run_benchmark(arguments: argparse.Namespace, workdir: Path) -> Report:
    report = Report(workers=arguments.workers)
    service_project = copy_project(workdir / "service")
    log_path = workdir / "service.log"
    print(
        f"kedro-runs benchmark: pipeline {PIPELINE!r}, {arguments.workers} worker(s), "
        f"{os.cpu_count()} CPU(s), Python {sys.version.split()[0]}",
        flush=True,
    )

    with running_service(service_project, arguments.workers, log_path, arguments.start_timeout) as (
        service,
        startup,
    ):
        report.startup_s = startup
        print(f"service on {service.url}, ready in {startup:.2f} s\n", flush=True)

        print(
            f"[1/4] submit latency: {SUBMIT_CLIENTS} clients, up to "
            f"{arguments.submit_total} submissions / {arguments.phase_seconds:g} s",
            flush=True,
        )
        report.submit = measure_submit_latency(
            service, arguments.submit_total, arguments.phase_seconds, arguments.drain_timeout
        )
        print_submit(report.submit)
        if not report.submit.drained:
            report.problems.append("the submit backlog did not drain; later figures are skewed")

        print(
            f"\n[2/4] throughput: {THROUGHPUT_CLIENTS} clients, submit + "
            f"{_poll_text(THROUGHPUT_POLL_S)}, up to {arguments.runs} runs / "
            f"{arguments.phase_seconds:g} s",
            flush=True,
        )
        report.throughput = measure_throughput(service, arguments.runs, arguments.phase_seconds)
        print_throughput(report.throughput)
        if not service.wait_until_idle(arguments.drain_timeout):
            report.problems.append("runs still active after the throughput measurement")

        print(
            f"\n[3/4] end-to-end latency: {arguments.e2e_runs} sequential runs, "
            f"{_poll_text(E2E_POLL_S)}",
            flush=True,
        )
        report.e2e = measure_end_to_end(
            service, arguments.e2e_runs, arguments.phase_seconds, E2E_POLL_S
        )
        print_e2e(report.e2e)
        # Tight polling competes for the CPU with the run it watches: shown for comparison.
        print(f"\n[3b/4] the same, {_poll_text(E2E_LIGHT_POLL_S)}", flush=True)
        report.e2e_light = measure_end_to_end(
            service, arguments.e2e_runs, arguments.phase_seconds, E2E_LIGHT_POLL_S
        )
        print_e2e(report.e2e_light)

        with contextlib.suppress(httpx.HTTPError, KeyError, ValueError):
            report.not_succeeded_runs = service.count_not_succeeded()
        if service.process is not None and service.process.poll() is not None:
            report.problems.append(f"the service exited early:\n{service.log_tail()}")
    log = log_path.read_text(errors="replace") if log_path.exists() else ""
    # Start-up INFO lines are expected (Kedro logs before the level is applied).
    noteworthy = [
        line
        for line in log.splitlines()
        if any(word in line for word in ("WARNING", "ERROR", "CRITICAL", "Traceback"))
    ]
    if noteworthy:
        report.problems.append(
            f"the service logged {len(noteworthy)} warning/error line(s); "
            "last ones:\n" + "\n".join(noteworthy[-15:])
        )

    print(
        f"\n[4/4] in-process session.run: {INPROCESS_WARMUP} warm-up + "
        f"{arguments.inprocess_runs} timed runs in a separate process",
        flush=True,
    )
    report.inprocess = measure_inprocess(
        copy_project(workdir / "inprocess"), arguments.inprocess_runs, arguments.phase_seconds
    )
    print_inprocess(report.inprocess)
    return report


def main(argv: list[str] | None = None) -> int:
    arguments = parse_args(argv)
    signal.signal(signal.SIGTERM, _raise_on_sigterm)
    workdir = Path(tempfile.mkdtemp(prefix="kedro-runs-bench-"))
    began = time.monotonic()
    try:
        report = run_benchmark(arguments, workdir)
        print_summary(report)
        print(f"\n(total {time.monotonic() - began:.1f} s)")
    except KeyboardInterrupt:
        print("\ninterrupted; the service was stopped", file=sys.stderr)
        return 130
    finally:
        if arguments.keep_temp:
            print(f"temporary files kept in {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

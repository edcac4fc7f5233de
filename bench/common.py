"""What the benchmarks share: latency statistics, bounded client loops, CPU per run, and
the throughput measurement (clients that submit a run, wait for it, and repeat).

Every loop here is bounded in count and in time. Percentiles are linearly interpolated.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
from service_process import Service

PIPELINE = "noop"
RUN_BODY: dict[str, Any] = {"pipeline_names": [PIPELINE]}
TERMINAL = frozenset({"succeeded", "failed", "cancelled"})
LONG_POLL_WAIT_S = 30
PER_RUN_TIMEOUT_S = 30.0  # one noop run taking longer than this counts as a timeout


# -- statistics --------------------------------------------------------------------------


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


def ratio(numerator: float, denominator: float) -> float:
    """numerator / denominator; nan when the denominator is 0 or nan."""
    return numerator / denominator if denominator and not math.isnan(denominator) else math.nan


def parse_time(text: str) -> float:
    """An ISO 8601 timestamp from the service as a POSIX time (naive means UTC)."""
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


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


# -- bounded client loops -------------------------------------------------------------------


class ErrorTally:
    """Thread-safe count of errors by kind."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.counts: dict[str, int] = {}

    def add(self, kind: str) -> None:
        with self._lock:
            self.counts[kind] = self.counts.get(kind, 0) + 1


def errors_text(errors: dict[str, int]) -> str:
    return ", ".join(f"{kind} x{count}" for kind, count in sorted(errors.items())) or "none"


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


def poll_until_terminal(
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


def poll_text(interval: float) -> str:
    if interval == 0:
        return f"long poll (GET /runs/{{id}}?wait={LONG_POLL_WAIT_S})"
    return f"polling every {interval * 1000:g} ms"


# -- CPU --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CpuPerRun:
    """CPU time spent per completed run, by process, in ms (Linux /proc; nan elsewhere)."""

    api_ms: float  # the services' API processes
    workers_ms: float  # the rest of the services' process groups: their workers (and the
    # multiprocessing resource tracker, which uses next to nothing)
    client_ms: float  # this benchmark process (its HTTP clients)


class CpuMeter:
    """CPU used by the services' processes and by this process between start and stop."""

    def __init__(self, services: Sequence[Service]) -> None:
        self._services = services
        self._api, self._workers = self._service_seconds()
        self._client = time.process_time()

    def _service_seconds(self) -> tuple[float, float]:
        used = [service.cpu_seconds() for service in self._services]
        return sum(api for api, _ in used), sum(workers for _, workers in used)

    def per_run(self, runs: int) -> CpuPerRun:
        api, workers = self._service_seconds()
        runs = max(runs, 1)
        return CpuPerRun(
            api_ms=(api - self._api) * 1000 / runs,
            workers_ms=(workers - self._workers) * 1000 / runs,
            client_ms=(time.process_time() - self._client) * 1000 / runs,
        )


# -- throughput ---------------------------------------------------------------------------------


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


def measure_throughput(
    services: Sequence[Service], clients: int, total: int, seconds: float
) -> ThroughputResult:
    """``clients`` clients (client i talks to ``services[i % len(services)]``): submit a
    ``noop`` run, wait for it with a long poll, repeat; at most ``total`` runs or
    ``seconds``. Runs/s as the clients see them and from the runs' own timestamps."""
    tickets = Tickets(total, time.monotonic() + seconds)
    lock = threading.Lock()
    errors = ErrorTally()
    latencies: list[float] = []
    finished_runs: list[dict[str, Any]] = []
    last_done = [0.0]
    gets: list[float] = []  # list.append is atomic: shared by the client threads

    def client_loop(index: int) -> None:
        with services[index % len(services)].client() as client:
            while tickets.take():
                started = time.perf_counter()
                try:
                    response = client.post("/runs", json=RUN_BODY)
                    if response.status_code != 202:
                        errors.add(f"POST HTTP {response.status_code}")
                        continue
                    run = poll_until_terminal(
                        client,
                        response.json()["run_id"],
                        0.0,
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

    meter = CpuMeter(services)
    began = time.perf_counter()
    run_clients(clients, tickets, client_loop)
    window = (last_done[0] - began) if finished_runs else math.nan
    cpu = meter.per_run(len(finished_runs))
    succeeded = sum(1 for run in finished_runs if run["status"] == "succeeded")
    for run in finished_runs:
        if run["status"] != "succeeded":
            errors.add(f"run {run['status']}")
    return ThroughputResult(
        completed=len(finished_runs),
        succeeded=succeeded,
        errors=errors.counts,
        window_s=window,
        client_rps=len(finished_runs) / window if finished_runs else 0.0,
        server_rps=_server_rps(finished_runs),
        latency=LatencyStats.of(latencies),
        cpu=cpu,
        get_round_trip=LatencyStats.of(gets),
    )


def _server_rps(finished_runs: Sequence[dict[str, Any]]) -> float:
    """count / (last finished_at - first queued_at), from the runs' own timestamps."""
    with_times = [run for run in finished_runs if run["timestamps"]["finished_at"]]
    if not with_times:
        return math.nan
    first_queued = min(parse_time(r["timestamps"]["queued_at"]) for r in with_times)
    last_finished = max(parse_time(r["timestamps"]["finished_at"]) for r in with_times)
    if last_finished <= first_queued:
        return math.nan
    return len(with_times) / (last_finished - first_queued)

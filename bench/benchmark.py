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
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType

import httpx
from common import (
    PER_RUN_TIMEOUT_S,
    PIPELINE,
    RUN_BODY,
    CpuMeter,
    CpuPerRun,
    ErrorTally,
    LatencyStats,
    ThroughputResult,
    Tickets,
    errors_text,
    measure_throughput,
    median,
    parse_time,
    poll_text,
    poll_until_terminal,
    ratio,
    run_clients,
)
from service_process import Service, running_services
from support import copy_project

KEDRO_SERVER_RPS_AT_8 = 31.0  # reference: Kedro's own server, concurrency 8
E2E_RATIO_TARGET = 1.5  # end-to-end p50 / in-process p50

SUBMIT_CLIENTS = 16
THROUGHPUT_CLIENTS = 8
THROUGHPUT_POLL_S = 0.0  # measure_throughput long-polls: GET /runs/{id}?wait=...
E2E_POLL_S = 0.0  # 0: long poll, as a client waiting for one run should
E2E_LIGHT_POLL_S = 0.002  # tight polling, for comparison
INPROCESS_WARMUP = 5


# -- results -------------------------------------------------------------------------


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

    meter = CpuMeter([service])
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
                run = poll_until_terminal(
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


def print_submit(result: SubmitResult) -> None:
    print(f"  POST /runs round trip: {result.latency.short()}")
    print(
        f"  accepted {result.accepted} in {result.elapsed_s:.2f} s "
        f"({result.submits_per_s:.1f} submissions/s); errors: {errors_text(result.errors)}"
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
        f"{result.window_s:.2f} s; errors: {errors_text(result.errors)}"
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
    print(f"  {poll_text(result.poll_s)}")
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
    print(f"  errors: {errors_text(result.errors)}", flush=True)


def print_inprocess(result: InProcessResult) -> None:
    if result.error:
        print(f"  FAILED: {result.error}")
    print(f"  session.run: {result.latency.short()}", flush=True)


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
                f"CPU per run at conc. 8 ({poll_text(THROUGHPUT_POLL_S)}): API/workers/clients",
                f"{t.cpu.api_ms:.1f} / {t.cpu.workers_ms:.1f} / {t.cpu.client_ms:.1f} ms",
            ),
        ]
    if report.e2e:
        e = report.e2e
        poll = poll_text(e.poll_s)
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
                f"end-to-end p50 / p99 (to run_succeeded event, {poll_text(e.poll_s)})",
                f"{e.to_terminal_event.p50_ms:.2f} / {e.to_terminal_event.p99_ms:.2f} ms",
            ),
            (
                f"end-to-end p50 / p99 (client-observed, {poll_text(e.poll_s)})",
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
                f"{ratio(report.throughput.client_rps, KEDRO_SERVER_RPS_AT_8):.2f}x",
            )
        )
    if report.e2e and report.inprocess:
        base = report.inprocess.latency.p50_ms
        e2e_ratio = ratio(report.e2e.to_terminal_event.p50_ms, base)
        verdict = "meets" if e2e_ratio <= E2E_RATIO_TARGET else "MISSES"
        rows.append(
            (
                f"end-to-end p50 / in-process p50 (target <= {E2E_RATIO_TARGET:g})",
                f"{e2e_ratio:.2f} ({verdict} target)",
            )
        )
        rows.append(
            (
                "  same, client-observed end-to-end",
                f"{ratio(report.e2e.client_observed.p50_ms, base):.2f}",
            )
        )
        if report.e2e_light:
            rows.append(
                (
                    f"  same, {poll_text(report.e2e_light.poll_s)}",
                    f"{ratio(report.e2e_light.to_terminal_event.p50_ms, base):.2f}",
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

    service = Service(service_project, arguments.workers, log_path)
    with running_services([service], arguments.start_timeout) as startup:
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
            f"{poll_text(THROUGHPUT_POLL_S)}, up to {arguments.runs} runs / "
            f"{arguments.phase_seconds:g} s",
            flush=True,
        )
        report.throughput = measure_throughput(
            [service], THROUGHPUT_CLIENTS, arguments.runs, arguments.phase_seconds
        )
        print_throughput(report.throughput)
        if not service.wait_until_idle(arguments.drain_timeout):
            report.problems.append("runs still active after the throughput measurement")

        print(
            f"\n[3/4] end-to-end latency: {arguments.e2e_runs} sequential runs, "
            f"{poll_text(E2E_POLL_S)}",
            flush=True,
        )
        report.e2e = measure_end_to_end(
            service, arguments.e2e_runs, arguments.phase_seconds, E2E_POLL_S
        )
        print_e2e(report.e2e)
        # Tight polling competes for the CPU with the run it watches: shown for comparison.
        print(f"\n[3b/4] the same, {poll_text(E2E_LIGHT_POLL_S)}", flush=True)
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

#!/usr/bin/env python
"""Benchmark of issue 10 (the database as the source of truth), in one invocation.

1. Throughput at concurrency 8 (8 clients: submit ``noop``, long-poll
   ``GET /runs/{id}?wait=30``, repeat; at most ``--runs`` runs or ``--phase-seconds``,
   after ``--warmup`` runs that do not count) of:

   a. the embedded service (SQLite) at the pre-redesign commit ``--baseline``, its ``app``
      taken out of git into a temporary directory and run with this interpreter;
   b. the embedded service (SQLite) of this tree;
   c. ``--replicas`` cluster replicas (``serve --cluster``) of this tree on a fresh
      PostgreSQL database, the 8 clients spread over them.

   Interleaved (a, b, c, a, b, c, ...) ``--rounds`` times, each service started for its
   turn and stopped after it; the same number of workers in all (``--workers`` per
   embedded service, ``--workers / --replicas`` per replica).
2. History size (``history.py``): latencies of ``POST /runs`` and of ``GET /runs?limit=50``
   (newest page, 1000 pages deep, last page) on a fresh store against those on one
   filled to ``--history-runs`` runs by direct SQL (``bulk_fill.py``), both served at
   once and asked in turn, on SQLite and on PostgreSQL (embedded mode); and the bytes on
   disk per stored run.
3. A summary table of every figure and the ratios.

Only 127.0.0.1: the services listen there, and PostgreSQL is the local server
(``--postgres``, trust authentication); the script creates its databases and drops them
at the end. Every loop is bounded in count and in time; every service is stopped
(SIGTERM, then SIGKILL of its process group), on error or Ctrl-C too.

Run from the repository root, with the project's venv active::

    python bench/scaleout.py                 # ~8 minutes on 2 cores
    python bench/scaleout.py --rounds 1 --history-runs 20000
    python bench/scaleout.py --help

This is a benchmark that prints figures, not a test: it asserts nothing.
"""

from __future__ import annotations

import argparse
import io
import os
import shutil
import signal
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path
from types import FrameType

from history import HistoryPlan, StoreSite, measure_history
from postgres import PostgresServer
from report import Report, print_history, print_summary, print_throughput_round
from service_process import HOST, REPO_ROOT, Service
from sqlalchemy.engine import make_url
from support import copy_project
from throughput import Setup, measure_setup

CLIENTS = 8
DEFAULT_POSTGRES = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1"})


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    add = parser.add_argument
    add("--rounds", type=int, default=3, help="interleaved rounds of a, b, c (default 3)")
    add("--runs", type=int, default=300, help="runs per throughput measurement (default 300)")
    add("--warmup", type=int, default=24, help="uncounted runs before each (default 24)")
    add("--phase-seconds", type=float, default=20.0, help="time bound of each (default 20)")
    add("--workers", type=int, default=2, help="workers per embedded service (default 2)")
    add("--replicas", type=int, default=2, help="cluster replicas (default 2)")
    add("--baseline", default="8df89d5", help="the pre-redesign commit (default 8df89d5)")
    add("--postgres", default=DEFAULT_POSTGRES, help=f"admin URL (default {DEFAULT_POSTGRES})")
    add("--history-runs", type=int, default=100_000, help="runs in the full store (100,000)")
    add("--samples", type=int, default=300, help="requests per latency figure (default 300)")
    add("--sample-seconds", type=float, default=40.0, help="time bound of each (default 40)")
    add("--start-timeout", type=float, default=120.0, help="to be ready (default 120)")
    add("--only", choices=("throughput", "history"), help="run one part only")
    add("--keep-temp", action="store_true", help="keep the temporary directory (logs)")
    arguments = parser.parse_args(argv)
    for name in ("rounds", "runs", "workers", "replicas", "history_runs", "samples"):
        if getattr(arguments, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1")
    if arguments.workers % arguments.replicas:
        parser.error("--workers must be a multiple of --replicas (the same workers in all)")
    if make_url(arguments.postgres).host not in LOOPBACK:
        parser.error("--postgres must be a server on this machine's loopback")
    return arguments


def extract_baseline(commit: str, destination: Path) -> Path:
    """The ``app`` package of ``commit``, from git, under ``destination``; returns it."""
    archive = subprocess.run(
        ["git", "-C", str(REPO_ROOT), "archive", "--format=tar", commit, "app"],
        capture_output=True,
        check=True,
        timeout=60,
    ).stdout
    destination.mkdir(parents=True)
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(destination, filter="data")
    return destination


def imported_app(source: Path) -> str:
    """Where ``import app`` leads for a service run from ``source`` (a sanity check)."""
    probe = Service(source / "unused", 1, source / "unused.log", source=source)
    done = subprocess.run(
        [sys.executable, "-c", "import app; print(app.__file__)"],
        cwd=source,
        env=probe.environment(),
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return done.stdout.strip()


def make_setups(arguments: argparse.Namespace, workdir: Path, cluster_url: str) -> list[Setup]:
    baseline = extract_baseline(arguments.baseline, workdir / "baseline")
    print(f"baseline {arguments.baseline}: import app -> {imported_app(baseline)}")
    per_replica = arguments.workers // arguments.replicas
    return [
        Setup(
            "a",
            f"{arguments.baseline} embedded SQLite, {arguments.workers} workers",
            copy_project(workdir / "a"),
            [arguments.workers],
            source=baseline,
        ),
        Setup(
            "b",
            f"this tree, embedded SQLite, {arguments.workers} workers",
            copy_project(workdir / "b"),
            [arguments.workers],
        ),
        Setup(
            "c",
            f"this tree, {arguments.replicas} cluster replicas x {per_replica} worker(s), "
            "PostgreSQL",
            copy_project(workdir / "c"),
            [per_replica] * arguments.replicas,
            env={"KEDRO_RUNS_DATABASE": cluster_url, "KEDRO_RUNS_CLUSTER": "true"},
        ),
    ]


def run_throughput(arguments: argparse.Namespace, workdir: Path, report: Report) -> None:
    server = PostgresServer(make_url(arguments.postgres), arguments.postgres)
    with server.database() as cluster_url:
        setups = make_setups(arguments, workdir, cluster_url)
        for turn in range(arguments.rounds):
            print(f"\n-- round {turn + 1} of {arguments.rounds}", flush=True)
            for setup in setups:
                figures = measure_setup(setup, turn, arguments, CLIENTS)
                report.throughput.setdefault(setup.key, (setup, []))[1].append(figures)
                print_throughput_round(setup, figures)


def run_history(arguments: argparse.Namespace, workdir: Path, report: Report) -> None:
    plan = HistoryPlan(
        arguments.workers,
        arguments.history_runs,
        arguments.samples,
        arguments.sample_seconds,
        arguments.start_timeout,
    )
    sites = []
    for name in ("fresh", "full"):
        project = copy_project(workdir / f"history-sqlite-{name}")
        sites.append(StoreSite(project, f"sqlite:///{project / '.kedro-runs' / 'runs.db'}"))
    report.history.append(measure_history("SQLite", sites[0], sites[1], plan, say))
    server = PostgresServer(make_url(arguments.postgres), arguments.postgres)
    with server.database() as fresh_url, server.database() as full_url:
        fresh = StoreSite(copy_project(workdir / "history-postgresql-fresh"), fresh_url)
        full = StoreSite(copy_project(workdir / "history-postgresql-full"), full_url)
        report.history.append(measure_history("PostgreSQL", fresh, full, plan, say))
    for result in report.history:
        print_history(result)


def say(text: str) -> None:
    print(text, flush=True)


def _raise_on_sigterm(signum: int, _frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)  # so the finally blocks stop the services


def main(argv: list[str] | None = None) -> int:
    arguments = parse_args(argv)
    inherited = sorted(name for name in os.environ if name.startswith("KEDRO_RUNS_"))
    if inherited:
        print(f"unset {', '.join(inherited)}: each service gets its settings from here")
        return 2
    signal.signal(signal.SIGTERM, _raise_on_sigterm)
    workdir = Path(tempfile.mkdtemp(prefix="kedro-runs-scaleout-"))
    report = Report(arguments, os.cpu_count() or 0)
    began = time.monotonic()
    print(f"kedro-runs scale-out benchmark on {HOST}: {report.machine()}", flush=True)
    try:
        if arguments.only in (None, "throughput"):
            print("\n[1/2] throughput at concurrency 8", flush=True)
            run_throughput(arguments, workdir, report)
        if arguments.only in (None, "history"):
            print(f"\n[2/2] history: {arguments.history_runs:,} runs stored", flush=True)
            run_history(arguments, workdir, report)
        print_summary(report)
        print(f"\n(total {time.monotonic() - began:.1f} s)")
    except KeyboardInterrupt:
        print("\ninterrupted; the services were stopped", file=sys.stderr)
        return 130
    finally:
        if arguments.keep_temp:
            print(f"temporary files kept in {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""One turn of the scale-out throughput measurement: start a setup's services, warm them
up, measure (``common.measure_throughput``), stop them.

A setup is one or more services of one tree (cluster replicas share the project copy and
the database). The CPU of the PostgreSQL server processes serving the setup's database is
counted too: on one machine it competes for the same cores as the service.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from common import ThroughputResult, measure_throughput
from service_process import REPO_ROOT, Service, running_services
from sqlalchemy.engine import make_url


class TurnBounds(Protocol):
    """What bounds one turn (the command line's arguments)."""

    runs: int
    warmup: int
    phase_seconds: float
    start_timeout: float


@dataclass(frozen=True)
class Setup:
    """Services of one kind: ``workers`` gives each one's worker count."""

    key: str
    label: str
    project: Path
    workers: list[int]
    source: Path = REPO_ROOT
    env: Mapping[str, str] = field(default_factory=dict)

    def services(self, turn: int) -> list[Service]:
        """Fresh services for turn ``turn``: each is ready when it sees every worker of
        the setup (a replica counts the other replicas' too)."""
        return [
            Service(
                self.project,
                workers,
                self.project.parent / f"service-{index}-turn-{turn}.log",
                source=self.source,
                env=self.env,
                ready_workers=sum(self.workers),
            )
            for index, workers in enumerate(self.workers)
        ]

    @property
    def database(self) -> str | None:
        """The PostgreSQL database the services use, if any."""
        url = self.env.get("KEDRO_RUNS_DATABASE")
        return make_url(url).database if url and url.startswith("postgresql") else None


@dataclass(frozen=True)
class TurnFigures:
    result: ThroughputResult
    startup_s: float
    database_ms: float  # CPU of the PostgreSQL processes per run; nan without one
    idle_after: bool  # every run had ended when the services were stopped
    noteworthy_log_lines: list[str]

    @property
    def cpu_total_ms(self) -> float:
        cpu = self.result.cpu
        database = 0.0 if math.isnan(self.database_ms) else self.database_ms
        return cpu.api_ms + cpu.workers_ms + database


def measure_setup(setup: Setup, turn: int, bounds: TurnBounds, clients: int) -> TurnFigures:
    """Start ``setup``'s services, run ``bounds.warmup`` runs that do not count, measure,
    stop them (also on error or Ctrl-C)."""
    services = setup.services(turn)
    with running_services(services, bounds.start_timeout) as startup:
        measure_throughput(services, clients, bounds.warmup, bounds.phase_seconds)
        database = DatabaseCpu(setup.database)
        result = measure_throughput(services, clients, bounds.runs, bounds.phase_seconds)
        database_ms = database.per_run(result.completed)
        idle = all(service.wait_until_idle(30.0) for service in services)
    lines = [line for service in services for line in service.noteworthy_log_lines()]
    return TurnFigures(result, startup, database_ms, idle, lines)


class DatabaseCpu:
    """CPU used, from now on, by the PostgreSQL server processes connected to
    ``database`` (their process title names it). A backend that exits meanwhile is not
    counted: the services keep their connections pooled, so few do. Linux only (nan
    elsewhere, and without a database)."""

    def __init__(self, database: str | None) -> None:
        self._database = database
        self._start = self._snapshot()

    def _snapshot(self) -> dict[int, float]:
        proc = Path("/proc")
        if self._database is None or not proc.is_dir():
            return {}
        ticks = float(os.sysconf("SC_CLK_TCK"))
        marker = f" {self._database} "
        seconds: dict[int, float] = {}
        for entry in proc.iterdir():
            if not entry.name.isdigit():
                continue
            try:
                title = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
                stat = (entry / "stat").read_text()
            except (OSError, UnicodeDecodeError):
                continue  # gone meanwhile, or not ours to read
            if title.startswith("postgres: ") and marker in title:
                fields = stat[stat.rindex(")") + 2 :].split()
                seconds[int(entry.name)] = (int(fields[11]) + int(fields[12])) / ticks
        return seconds

    def per_run(self, runs: int) -> float:
        """Milliseconds per run since this meter was made."""
        if self._database is None or not Path("/proc").is_dir():
            return math.nan
        now = self._snapshot()
        used = sum(seconds - self._start.get(pid, 0.0) for pid, seconds in now.items())
        return used * 1000 / max(runs, 1)

"""What the scale-out benchmark prints: a line per measurement as it goes, and the summary
table at the end (medians with their min-max over rounds, and the ratios)."""

from __future__ import annotations

import argparse
import math
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from common import LatencyStats, errors_text, median, ratio
from history import DEEP_PAGES, PAGE, HistoryResult
from throughput import Setup, TurnFigures


@dataclass
class Report:
    arguments: argparse.Namespace
    cpus: int
    throughput: dict[str, tuple[Setup, list[TurnFigures]]] = field(default_factory=dict)
    history: list[HistoryResult] = field(default_factory=list)

    def machine(self) -> str:
        load = ", ".join(f"{value:.2f}" for value in os.getloadavg())
        moment = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
        return f"{self.cpus} CPU(s), Python {sys.version.split()[0]}, {moment}, load average {load}"


def spread(values: Sequence[float], unit: str = "", digits: int = 1) -> str:
    """The median and the range: ``47.1 (44.0-49.9) runs/s``."""
    if not values:
        return "n/a"
    low, mid, high = min(values), median(values), max(values)
    suffix = f" {unit}" if unit else ""
    return f"{mid:.{digits}f} ({low:.{digits}f}-{high:.{digits}f}){suffix}"


def print_throughput_round(setup: Setup, figures: TurnFigures) -> None:
    result, cpu = figures.result, figures.result.cpu
    database = "" if math.isnan(figures.database_ms) else f" + PostgreSQL {figures.database_ms:.1f}"
    print(
        f"  {setup.key}. {setup.label}: {result.client_rps:.1f} runs/s "
        f"(server timestamps {result.server_rps:.1f}); {result.completed} runs in "
        f"{result.window_s:.1f} s; per-run latency p50 {result.latency.p50_ms:.0f} / p99 "
        f"{result.latency.p99_ms:.0f} ms; CPU per run API {cpu.api_ms:.1f} + workers "
        f"{cpu.workers_ms:.1f}{database} ms; ready in {figures.startup_s:.1f} s; "
        f"errors: {errors_text(result.errors)}; load average now {os.getloadavg()[0]:.1f}",
        flush=True,
    )


def _pair(stats: LatencyStats) -> str:
    return f"{stats.p50_ms:.1f} / {stats.p99_ms:.1f} ms" if stats.count else "n/a"


def _counted(stats: LatencyStats) -> str:
    return f"{_pair(stats)} (n={stats.count})" if stats.count else "n/a"


@dataclass(frozen=True)
class _HistoryLine:
    name: str
    fresh: LatencyStats
    full: LatencyStats
    baseline: LatencyStats  # what the full store's p99 is compared with
    baseline_name: str

    def p99_ratio(self) -> str:
        return f"p99 x{ratio(self.full.p99_ms, self.baseline.p99_ms):.2f} {self.baseline_name}"


def _history_lines(result: HistoryResult) -> list[_HistoryLine]:
    """One line per figure; the deep page has no fresh counterpart (a fresh store is not
    that deep), so it is compared with the fresh store's newest page."""
    fresh, full = result.fresh, result.full
    page = f"GET /runs?limit={PAGE}"
    return [
        _HistoryLine("POST /runs (noop)", fresh.post, full.post, fresh.post, "of fresh"),
        _HistoryLine(
            f"{page} (newest page)",
            fresh.first_page,
            full.first_page,
            fresh.first_page,
            "of fresh",
        ),
        _HistoryLine(
            f"{page}, {DEEP_PAGES} pages deep",
            fresh.deep_page,
            full.deep_page,
            fresh.first_page,
            "of fresh newest page",
        ),
        _HistoryLine(
            f"{page}, last page", fresh.last_page, full.last_page, fresh.last_page, "of fresh"
        ),
    ]


def print_history(result: HistoryResult) -> None:
    fresh, full = result.fresh, result.full
    print(
        f"\n  {result.backend}: p50 / p99 on a fresh store ({fresh.runs_stored:,} runs) and "
        f"with {full.runs_stored:,} runs stored"
    )
    for line in _history_lines(result):
        print(
            f"    {line.name:<40} {_counted(line.fresh):>28}  {_counted(line.full):>28}  "
            f"{line.p99_ratio()}"
        )
    print(
        f"    on disk: {fresh.store_bytes / 1e6:.1f} MB fresh, {full.store_bytes / 1e6:.1f} MB "
        f"full; the fill added {result.fill_bytes / 1e6:.1f} MB for {result.inserted:,} runs "
        f"(in {result.fill_s:.1f} s): {result.bytes_per_run:,.0f} bytes per run; errors: "
        f"{errors_text(fresh.errors)} / {errors_text(full.errors)}",
        flush=True,
    )


def _optional(value: float) -> str:
    return "-" if math.isnan(value) else f"{value:.1f}"


def _throughput_rows(report: Report) -> list[tuple[str, str]]:
    rows: list[tuple[str, str]] = []
    rates: dict[str, list[float]] = {}
    for key, (setup, turns) in report.throughput.items():
        rates[key] = [turn.result.client_rps for turn in turns]
        rows += [
            (f"{key}. {setup.label}: runs/s", spread(rates[key], "runs/s")),
            (
                f"{key}.   runs/s from server timestamps",
                spread([t.result.server_rps for t in turns]),
            ),
            (
                f"{key}.   per-run latency p50 / p99",
                f"{spread([t.result.latency.p50_ms for t in turns], digits=0)} / "
                f"{spread([t.result.latency.p99_ms for t in turns], 'ms', digits=0)}",
            ),
            (
                f"{key}.   CPU per run: API / workers / PostgreSQL",
                f"{median([t.result.cpu.api_ms for t in turns]):.1f} / "
                f"{median([t.result.cpu.workers_ms for t in turns]):.1f} / "
                f"{_optional(median([t.database_ms for t in turns]))} ms (medians)",
            ),
        ]
    for top, bottom in (("b", "a"), ("c", "b")):
        if top in rates and bottom in rates:
            paired = [ratio(x, y) for x, y in zip(rates[top], rates[bottom], strict=True)]
            rows.append(
                (
                    f"throughput {top}/{bottom}",
                    f"{ratio(median(rates[top]), median(rates[bottom])):.2f} "
                    f"(of the medians; per round {spread(paired, digits=2)})",
                )
            )
    return rows


def _history_rows(report: Report) -> list[tuple[str, str]]:
    rows: list[tuple[str, str]] = []
    for result in report.history:
        for line in _history_lines(result):
            rows.append(
                (
                    f"{result.backend} {line.name} p50 / p99",
                    f"{_pair(line.fresh)} fresh, {_pair(line.full)} at "
                    f"{result.full.runs_stored:,} runs ({line.p99_ratio()})",
                )
            )
        rows.append(
            (f"{result.backend} bytes on disk per stored run", f"{result.bytes_per_run:,.0f}")
        )
    return rows


def _problems(report: Report) -> list[str]:
    problems = [
        f"{setup.key}, round {index + 1}: {line}"
        for setup, turns in report.throughput.values()
        for index, turn in enumerate(turns)
        for line in (
            turn.noteworthy_log_lines[-5:]
            + ([] if turn.idle_after else ["runs still active when the services were stopped"])
        )
    ]
    for result in report.history:
        for store, figures in (("fresh", result.fresh), ("full", result.full)):
            label = f"{result.backend} {store} store"
            problems += [f"{label}: {line}" for line in figures.noteworthy_log_lines[-5:]]
            if figures.errors:
                problems.append(f"{label}: errors {errors_text(figures.errors)}")
    return problems


def print_summary(report: Report) -> None:
    arguments = report.arguments
    rows: list[tuple[str, str]] = [("machine", report.machine())]
    if report.throughput:
        rows.append(
            (
                "throughput set-up",
                f"{arguments.rounds} interleaved rounds; 8 clients; up to {arguments.runs} runs "
                f"or {arguments.phase_seconds:g} s after {arguments.warmup} warm-up runs; "
                f"workers: {arguments.workers} per embedded service, "
                f"{arguments.workers // arguments.replicas} per replica x {arguments.replicas}",
            )
        )
    rows += _throughput_rows(report)
    if report.history:
        rows.append(
            (
                "history set-up",
                f"one client; {arguments.samples} requests per figure (at most "
                f"{arguments.sample_seconds:g} s); {arguments.workers} workers; embedded mode",
            )
        )
    rows += _history_rows(report)
    width = max(len(name) for name, _ in rows)
    print("\n== Summary " + "=" * (width + 12))
    for name, value in rows:
        print(f"  {name.ljust(width)}  {value}")
    for problem in _problems(report):
        print(f"  ! {problem}")
    sys.stdout.flush()

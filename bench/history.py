"""What a long history costs: request latencies on a fresh store and on one holding many
runs, measured against the real service.

For one store (SQLite or PostgreSQL, embedded mode): start the service on it, warm up,
measure; stop it; fill the store by direct SQL (``bulk_fill``) up to ``history_runs``
runs; start it again, warm up, measure the same. Measured, one client at a time:

- ``POST /runs`` (noop): the POST's round trip; the client then waits for the run to end
  (not timed), so no queue builds up;
- ``GET /runs?limit=50``: the newest page;
- the same ``DEEP_PAGES`` pages deep (the cursor ``next`` would be after following it
  that many times, read from the store), on a store that deep;
- the last full page (the 50 oldest runs).

A page that does not hold 50 runs counts as an error. Each sample loop is bounded in
count and in time.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import httpx
from bulk_fill import count_runs, fill_store, page_cursor, store_bytes
from common import (
    PER_RUN_TIMEOUT_S,
    RUN_BODY,
    ErrorTally,
    LatencyStats,
    poll_until_terminal,
)
from service_process import Service, running_services

PAGE = 50
DEEP_PAGES = 1000
WARMUP_RUNS = 10


@dataclass(frozen=True)
class StoreFigures:
    """Latencies on one store, and what it held and weighed when they were taken."""

    runs_stored: int  # when the reads were measured
    post: LatencyStats
    first_page: LatencyStats
    deep_page: LatencyStats  # n=0 when the store is not DEEP_PAGES deep
    last_page: LatencyStats
    errors: dict[str, int]
    store_bytes: int  # after the service stopped
    noteworthy_log_lines: list[str]


@dataclass(frozen=True)
class HistoryResult:
    backend: str
    fresh: StoreFigures
    full: StoreFigures
    inserted: int
    fill_s: float

    @property
    def bytes_per_run(self) -> float:
        """Bytes on disk per run the fill added."""
        added = self.full.store_bytes - self.fresh.store_bytes
        return added / self.inserted if self.inserted else math.nan


@dataclass(frozen=True)
class HistoryPlan:
    workers: int
    history_runs: int
    samples: int
    seconds: float  # bound of each sample loop
    start_timeout: float


def measure_history(
    backend: str,
    project: Path,
    url: str,
    env: Mapping[str, str],
    plan: HistoryPlan,
    say: Callable[[str], None],
) -> HistoryResult:
    """Both stores' figures for the store at ``url`` (which the service at ``project``
    with ``env`` uses); ``say`` reports progress."""
    say(f"  {backend}: fresh store")
    fresh = _measure_service(project, url, env, plan, f"{backend}-fresh")
    say(f"  {backend}: filling the store to {plan.history_runs:,} runs by direct SQL")
    filled = fill_store(url, plan.history_runs)
    say(f"  {backend}: {filled.inserted:,} runs inserted in {filled.seconds:.1f} s; full store")
    full = _measure_service(project, url, env, plan, f"{backend}-full")
    return HistoryResult(backend, fresh, full, filled.inserted, filled.seconds)


def _measure_service(
    project: Path, url: str, env: Mapping[str, str], plan: HistoryPlan, name: str
) -> StoreFigures:
    service = Service(project, plan.workers, project.parent / f"{name}.log", env=env)
    errors = ErrorTally()
    with running_services([service], plan.start_timeout), service.client(timeout=60) as client:
        _submit_and_wait(client, WARMUP_RUNS, plan.seconds, errors, [])
        post: list[float] = []
        _submit_and_wait(client, plan.samples, plan.seconds, errors, post)
        stored = count_runs(url)
        deep = (
            page_cursor(url, DEEP_PAGES * PAGE - 1) if stored >= (DEEP_PAGES + 1) * PAGE else None
        )
        last = page_cursor(url, stored - PAGE - 1) if stored > PAGE else None
        first_page = _get_pages(client, None, plan, errors)
        deep_page = _get_pages(client, deep, plan, errors) if deep else LatencyStats.of([])
        last_page = _get_pages(client, last, plan, errors) if last else LatencyStats.of([])
    return StoreFigures(
        stored,
        LatencyStats.of(post),
        first_page,
        deep_page,
        last_page,
        errors.counts,
        store_bytes(url),
        service.noteworthy_log_lines(),
    )


def _submit_and_wait(
    client: httpx.Client, runs: int, seconds: float, errors: ErrorTally, round_trips: list[float]
) -> None:
    """Submit ``runs`` noop runs one by one, each after the previous one ended; appends
    each POST's round trip (s)."""
    deadline = time.monotonic() + seconds
    for _ in range(runs):
        if time.monotonic() >= deadline:
            break
        started = time.perf_counter()
        try:
            response = client.post("/runs", json=RUN_BODY)
            elapsed = time.perf_counter() - started
            if response.status_code != 202:
                errors.add(f"POST HTTP {response.status_code}")
                continue
            round_trips.append(elapsed)
            run = poll_until_terminal(
                client, response.json()["run_id"], 0.0, time.monotonic() + PER_RUN_TIMEOUT_S
            )
        except httpx.HTTPError as error:
            errors.add(type(error).__name__)
            continue
        if run is None or run["status"] != "succeeded":
            errors.add("run timeout" if run is None else f"run {run['status']}")


def _get_pages(
    client: httpx.Client, cursor: str | None, plan: HistoryPlan, errors: ErrorTally
) -> LatencyStats:
    """``plan.samples`` reads of the page after ``cursor`` (the newest without one)."""
    params: dict[str, str | int] = {"limit": PAGE}
    if cursor is not None:
        params["cursor"] = cursor
    round_trips: list[float] = []
    deadline = time.monotonic() + plan.seconds
    for _ in range(plan.samples):
        if time.monotonic() >= deadline:
            break
        started = time.perf_counter()
        try:
            response = client.get("/runs", params=params)
        except httpx.HTTPError as error:
            errors.add(type(error).__name__)
            continue
        elapsed = time.perf_counter() - started
        if response.status_code != 200 or len(response.json()["items"]) != PAGE:
            errors.add(f"GET /runs HTTP {response.status_code} (or not a full page)")
            continue
        round_trips.append(elapsed)
    return LatencyStats.of(round_trips)

"""What a long history costs: request latencies on a fresh store against those on one
holding many runs, measured through the real service.

For one database kind (SQLite or PostgreSQL, embedded mode) there are two stores. The
full one is made by the service (it migrates it and runs ``WARMUP_RUNS`` real runs, the
template of the copies), then filled by direct SQL (``bulk_fill``) up to
``history_runs`` runs. Then a service on each store runs at once and one client sends
the same request to each in turn, so both see the same machine load (this machine is
shared: load moves more than the difference measured). Measured:

- ``POST /runs`` (noop): the POST's round trip; the client then waits for the run to end
  (not timed), so no queue builds up;
- ``GET /runs?limit=50``: the newest page;
- the same ``DEEP_PAGES`` pages deep (the cursor ``next`` would be after following it
  that many times, read from the store), on the full store only;
- the last full page (the 50 oldest runs).

The fresh store's reads come after its POSTs (topped up to two full pages when the time
bound cut them short), so its pages are full: a page that does not hold 50 runs counts
as an error. Each loop is bounded in count and in time.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import httpx
from bulk_fill import count_runs, fill_store, page_cursor, store_bytes
from common import PER_RUN_TIMEOUT_S, RUN_BODY, ErrorTally, LatencyStats, poll_until_terminal
from service_process import Service, running_services

PAGE = 50
DEEP_PAGES = 1000
WARMUP_RUNS = 10


@dataclass(frozen=True)
class StoreSite:
    """Where one store lives: the project copy its service serves, and the store's URL."""

    project: Path
    url: str

    @property
    def env(self) -> Mapping[str, str]:
        return {"KEDRO_RUNS_DATABASE": self.url}

    def service(self, workers: int, name: str) -> Service:
        return Service(self.project, workers, self.project.parent / f"{name}.log", env=self.env)


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
    fill_bytes: int  # what the fill added on disk

    @property
    def bytes_per_run(self) -> float:
        """Bytes on disk per run the fill added."""
        return self.fill_bytes / self.inserted if self.inserted else math.nan


@dataclass(frozen=True)
class HistoryPlan:
    workers: int
    history_runs: int
    samples: int
    seconds: float  # bound of each sample loop
    start_timeout: float


def measure_history(
    backend: str, fresh: StoreSite, full: StoreSite, plan: HistoryPlan, say: Callable[[str], None]
) -> HistoryResult:
    """The figures of ``fresh`` against those of ``full`` once filled; ``say`` reports
    progress."""
    say(f"  {backend}: the service makes the store to fill, and {WARMUP_RUNS} runs in it")
    seeder = full.service(plan.workers, f"{backend}-seed")
    with running_services([seeder], plan.start_timeout), seeder.client(timeout=60) as client:
        _submit_and_wait(client, WARMUP_RUNS, plan.seconds, ErrorTally())
    empty_bytes = store_bytes(full.url)
    say(f"  {backend}: filling it to {plan.history_runs:,} runs by direct SQL")
    filled = fill_store(full.url, plan.history_runs)
    fill_bytes = store_bytes(full.url) - empty_bytes
    say(f"  {backend}: {filled.inserted:,} runs in {filled.seconds:.1f} s; measuring both stores")
    fresh_figures, full_figures = _measure_pair(backend, (fresh, full), plan)
    return HistoryResult(
        backend, fresh_figures, full_figures, filled.inserted, filled.seconds, fill_bytes
    )


def _measure_pair(
    backend: str, sites: tuple[StoreSite, StoreSite], plan: HistoryPlan
) -> tuple[StoreFigures, StoreFigures]:
    """Serve both stores at once and measure them request by request, in turn."""
    services = [
        site.service(plan.workers, f"{backend}-{name}")
        for site, name in zip(sites, ("fresh", "full"), strict=True)
    ]
    errors = [ErrorTally(), ErrorTally()]
    with running_services(services, plan.start_timeout), contextlib.ExitStack() as stack:
        clients = [stack.enter_context(service.client(timeout=60)) for service in services]
        pairs = list(zip(clients, errors, strict=True))
        for client, tally in pairs:
            _submit_and_wait(client, WARMUP_RUNS, plan.seconds, tally)
        posts = _alternate([_post_once(client, tally) for client, tally in pairs], plan)
        for (client, tally), site in zip(pairs, sites, strict=True):
            # Enough runs for two full pages, however few POSTs the time bound allowed.
            missing = 2 * PAGE + 1 - count_runs(site.url)
            _submit_and_wait(client, missing, plan.seconds, tally)
        stored = [count_runs(site.url) for site in sites]
        firsts = _alternate([_get_once(client, None, tally) for client, tally in pairs], plan)
        deep_enough = stored[1] >= (DEEP_PAGES + 1) * PAGE
        deep = (
            _alternate([_get_once(clients[1], _cursor(sites[1], DEEP_PAGES), errors[1])], plan)[0]
            if deep_enough
            else LatencyStats.of([])
        )
        lasts = _alternate(
            [
                _get_once(client, _cursor(site, count // PAGE - 1), tally)
                for (client, tally), site, count in zip(pairs, sites, stored, strict=True)
            ],
            plan,
        )
    figures = [
        StoreFigures(
            stored[index],
            posts[index],
            firsts[index],
            deep if index == 1 else LatencyStats.of([]),
            lasts[index],
            errors[index].counts,
            store_bytes(sites[index].url),
            services[index].noteworthy_log_lines(),
        )
        for index in (0, 1)
    ]
    return figures[0], figures[1]


def _cursor(site: StoreSite, pages: int) -> str | None:
    """The cursor after ``pages`` full pages (what following ``next`` that often gives);
    None for no page (the newest page)."""
    return page_cursor(site.url, pages * PAGE - 1) if pages > 0 else None


Sample = Callable[[], float | None]  # one timed request: its round trip (s), None if failed


def _alternate(samplers: Sequence[Sample], plan: HistoryPlan) -> list[LatencyStats]:
    """Each sampler in turn, ``plan.samples`` times (at most ``plan.seconds``)."""
    taken: list[list[float]] = [[] for _ in samplers]
    deadline = time.monotonic() + plan.seconds
    for _ in range(plan.samples):
        if time.monotonic() >= deadline:
            break
        for index, sample in enumerate(samplers):
            elapsed = sample()
            if elapsed is not None:
                taken[index].append(elapsed)
    return [LatencyStats.of(values) for values in taken]


def _post_once(client: httpx.Client, errors: ErrorTally) -> Sample:
    """Submit a noop run (timed), then wait for it to end (not timed)."""

    def sample() -> float | None:
        started = time.perf_counter()
        try:
            response = client.post("/runs", json=RUN_BODY)
            elapsed = time.perf_counter() - started
            if response.status_code != 202:
                errors.add(f"POST HTTP {response.status_code}")
                return None
            run = poll_until_terminal(
                client, response.json()["run_id"], 0.0, time.monotonic() + PER_RUN_TIMEOUT_S
            )
        except httpx.HTTPError as error:
            errors.add(type(error).__name__)
            return None
        if run is None or run["status"] != "succeeded":
            errors.add("run timeout" if run is None else f"run {run['status']}")
        return elapsed

    return sample


def _get_once(client: httpx.Client, cursor: str | None, errors: ErrorTally) -> Sample:
    """Read the page after ``cursor`` (the newest without one); it must be full."""
    params: dict[str, str | int] = {"limit": PAGE}
    if cursor is not None:
        params["cursor"] = cursor

    def sample() -> float | None:
        started = time.perf_counter()
        try:
            response = client.get("/runs", params=params)
        except httpx.HTTPError as error:
            errors.add(type(error).__name__)
            return None
        elapsed = time.perf_counter() - started
        if response.status_code != 200 or len(response.json()["items"]) != PAGE:
            errors.add(f"GET /runs HTTP {response.status_code} (or not a full page)")
            return None
        return elapsed

    return sample


def _submit_and_wait(client: httpx.Client, runs: int, seconds: float, errors: ErrorTally) -> None:
    """``runs`` noop runs one after the other (at most ``seconds``), untimed."""
    sample = _post_once(client, errors)
    deadline = time.monotonic() + seconds
    for _ in range(runs):
        if time.monotonic() >= deadline:
            break
        sample()

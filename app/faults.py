"""Crash points for tests: a test-only hook that kills this process at a named point.

``KEDRO_RUNS_CRASH_AT=<point>[:N][,<point>[:N]...]`` makes the process SIGKILL itself
the Nth time (default: the first) it reaches ``<point>``, once. The variable is read
once, when the service starts (``arm_from_environment``); unset, ``reached`` is one
comparison against None. Never set it in production.

Points (all in the API process): ``after_insert_before_202`` (the run row is committed,
the response not yet sent), ``after_claim`` (the run is marked running, its worker not
yet told), ``after_hand_over`` (its worker was told, its acknowledgement not yet
recorded), ``after_run_before_status`` (a worker's final report arrived, not yet
recorded).

``KEDRO_RUNS_FAIL_SPAWNS=<first>[:<count>]`` makes worker spawns number ``first`` to
``first + count - 1`` (counted from 1 in this process, retries included; ``count``
defaults to 1) run out of file descriptors for real: while such a spawn runs, the
soft ``RLIMIT_NOFILE`` leaves room for one pipe only, so its second ``Pipe()`` fails
with ``EMFILE`` as it does when the process has used them all (and the first pipe
is left half-made).
"""

from __future__ import annotations

import contextlib
import os
import resource
import signal
from collections.abc import Iterator

ENV_VAR = "KEDRO_RUNS_CRASH_AT"
SPAWN_ENV_VAR = "KEDRO_RUNS_FAIL_SPAWNS"
POINTS = frozenset(
    {"after_insert_before_202", "after_claim", "after_hand_over", "after_run_before_status"}
)

# point -> how many more times it may be reached before the kill; None: disarmed.
_armed: dict[str, int] | None = None
_failing_spawns: range = range(0)  # spawn numbers that run out of file descriptors
_spawns = 0  # worker spawns attempted so far


def parse(spec: str) -> dict[str, int]:
    """``"after_claim:3,after_insert_before_202"`` -> ``{"after_claim": 3, ...: 1}``.
    Raises ValueError for an unknown point or a count below 1."""
    armed: dict[str, int] = {}
    for item in filter(None, (part.strip() for part in spec.split(","))):
        point, _, count = item.partition(":")
        if point not in POINTS:
            raise ValueError(f"unknown crash point {point!r}; known: {sorted(POINTS)}")
        occurrence = int(count) if count else 1
        if occurrence < 1:
            raise ValueError(f"crash point {point!r}: the occurrence must be 1 or more")
        armed[point] = occurrence
    return armed


def parse_spawn_failures(spec: str) -> range:
    """``"2:3"`` -> spawns 2, 3 and 4; ``""`` -> none. Raises ValueError if malformed."""
    if not spec.strip():
        return range(0)
    first, _, count = spec.partition(":")
    start, length = int(first), int(count) if count else 1
    if start < 1 or length < 1:
        raise ValueError(f"{SPAWN_ENV_VAR}: the first spawn and the count must be 1 or more")
    return range(start, start + length)


def arm_from_environment() -> None:
    """Read ``KEDRO_RUNS_CRASH_AT`` and ``KEDRO_RUNS_FAIL_SPAWNS`` (once, at start-up).
    Raises ValueError if one is malformed."""
    global _armed, _failing_spawns, _spawns
    spec = os.environ.get(ENV_VAR, "")
    _armed = parse(spec) or None
    _failing_spawns = parse_spawn_failures(os.environ.get(SPAWN_ENV_VAR, ""))
    _spawns = 0


@contextlib.contextmanager
def spawn_attempt() -> Iterator[None]:
    """Around one worker spawn: if this spawn is armed to fail, no file descriptor is
    free while it runs (the soft limit is restored after)."""
    global _spawns
    _spawns += 1
    if _spawns not in _failing_spawns:
        yield
        return
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    # New descriptors take the lowest free numbers: a limit at the third lowest leaves
    # the first two for one pipe.
    probes = [os.open(os.devnull, os.O_RDONLY) for _ in range(3)]
    for probe in probes:
        os.close(probe)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(probes), hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def reached(point: str) -> None:
    """Kill this process with SIGKILL if ``point`` is armed and this is its Nth time."""
    if _armed is None or point not in _armed:
        return
    _armed[point] -= 1
    if _armed[point] == 0:
        del _armed[point]
        os.kill(os.getpid(), signal.SIGKILL)

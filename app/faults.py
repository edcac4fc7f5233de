"""Crash points for tests: a test-only hook that kills this process at a named point.

``KEDRO_RUNS_CRASH_AT=<point>[:N][,<point>[:N]...]`` makes the process SIGKILL itself
the Nth time (default: the first) it reaches ``<point>``, once. The variable is read
once, when the service starts (``arm_from_environment``); unset, ``reached`` is one
comparison against None. Never set it in production.

Points (all in the API process): ``after_insert_before_202`` (the run row is committed,
the response not yet sent), ``after_claim`` (the run is marked running, its worker not
yet told), ``after_run_before_status`` (a worker's final report arrived, not yet
recorded).
"""

from __future__ import annotations

import os
import signal

ENV_VAR = "KEDRO_RUNS_CRASH_AT"
POINTS = frozenset({"after_insert_before_202", "after_claim", "after_run_before_status"})

# point -> how many more times it may be reached before the kill; None: disarmed.
_armed: dict[str, int] | None = None


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


def arm_from_environment() -> None:
    """Read ``KEDRO_RUNS_CRASH_AT`` (once, at start-up). Raises ValueError if malformed."""
    global _armed
    spec = os.environ.get(ENV_VAR, "")
    _armed = parse(spec) or None


def reached(point: str) -> None:
    """Kill this process with SIGKILL if ``point`` is armed and this is its Nth time."""
    if _armed is None or point not in _armed:
        return
    _armed[point] -= 1
    if _armed[point] == 0:
        del _armed[point]
        os.kill(os.getpid(), signal.SIGKILL)

"""Nodes of the ``slow`` pipeline: sleep, then pass a counter along."""

from __future__ import annotations

import logging
import time
from typing import Any

logger = logging.getLogger(__name__)


def slow_step(counter: int, options: dict[str, Any]) -> int:
    """Sleep ``options["seconds_per_step"]`` seconds and return ``counter + 1``.

    If ``options["fail_at_step"]`` equals the incremented counter, raise a
    ``RuntimeError`` instead of returning, to exercise failure handling.

    Args:
        counter: Number of steps completed so far.
        options: ``slow`` parameters.

    Returns:
        The number of steps completed including this one.
    """
    seconds = float(options.get("seconds_per_step", 1.0))
    if seconds < 0:
        raise ValueError(f"slow.seconds_per_step must be >= 0, got {seconds}")
    step = int(counter) + 1
    time.sleep(seconds)
    fail_at = options.get("fail_at_step")
    if fail_at is not None and int(fail_at) == step:
        raise RuntimeError(f"slow step {step} failed on purpose (slow.fail_at_step)")
    logger.info("Slow step %d done after %.2fs", step, seconds)
    return step


def start_slow_chain(options: dict[str, Any]) -> int:
    """First link of the chain: behaves like ``slow_step`` starting from 0."""
    return slow_step(0, options)

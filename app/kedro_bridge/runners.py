"""The runners a caller may choose, by name. Never imported from what a caller sends.

ParallelRunner is left out: it starts processes of its own, which a worker
process (daemonic, one run at a time) cannot host. Kedro's full names
(``kedro.runner.SequentialRunner``, what Kedro's server and CLI accept) name the same
runners, and are stored as the short name.
"""

from __future__ import annotations

from typing import Any

RUNNERS = frozenset({"SequentialRunner", "ThreadRunner"})
KEDRO_RUNNER_MODULE = "kedro.runner."
RUNNER_NAMES = (*sorted(RUNNERS), *(KEDRO_RUNNER_MODULE + name for name in sorted(RUNNERS)))
"""Every name a request may give a runner by: the short names, then Kedro's full names."""


def short_runner_name(name: str) -> str | None:
    """The allowed runner ``name`` stands for (``kedro.runner.ThreadRunner`` is
    ``ThreadRunner``), or None if it names no allowed runner."""
    short = name.removeprefix(KEDRO_RUNNER_MODULE)
    return short if short in RUNNERS else None


def build_runner(name: str, is_async: bool) -> Any:
    """An instance of the allowed runner ``name``. Raises KeyError for any other name."""
    from kedro.runner import SequentialRunner, ThreadRunner

    classes = {"SequentialRunner": SequentialRunner, "ThreadRunner": ThreadRunner}
    if name not in RUNNERS:
        raise KeyError(name)
    return classes[name](is_async=is_async)

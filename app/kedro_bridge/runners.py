"""The runners a caller may choose, by name. Never an import path.

ParallelRunner is left out: it starts processes of its own, which a worker
process (daemonic, one run at a time) cannot host.
"""

from __future__ import annotations

from typing import Any

RUNNERS = frozenset({"SequentialRunner", "ThreadRunner"})


def build_runner(name: str, is_async: bool) -> Any:
    """An instance of the allowed runner ``name``. Raises KeyError for any other name."""
    from kedro.runner import SequentialRunner, ThreadRunner

    classes = {"SequentialRunner": SequentialRunner, "ThreadRunner": ThreadRunner}
    if name not in RUNNERS:
        raise KeyError(name)
    return classes[name](is_async=is_async)

"""What starting a worker needs from the operating system, and how it fails cleanly."""

from __future__ import annotations

import contextlib
import logging
import multiprocessing.context
import resource
from multiprocessing.connection import Connection

logger = logging.getLogger("kedro_runs.pool")


def open_worker_pipes(
    context: multiprocessing.context.SpawnContext,
) -> tuple[Connection, Connection, Connection, Connection]:
    """A worker's job pipe (read end, write end) and results pipe (read end, write end).
    Raises OSError (EMFILE, ENFILE) with none of them left open."""
    made: list[Connection] = []
    try:
        for _ in range(2):
            made.extend(context.Pipe(duplex=False))
    except BaseException:
        for end in made:
            end.close()
        raise
    jobs_out, jobs_in, results_out, results_in = made
    return jobs_out, jobs_in, results_out, results_in


def raise_open_file_limit() -> None:
    """Raise this process's soft RLIMIT_NOFILE to its hard limit: each worker holds two
    pipes and each client a socket, and a soft limit of 1024 is reached long before
    the machine runs out of anything."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == hard:
        return
    target = hard if hard != resource.RLIM_INFINITY else max(soft, 1 << 20)
    with contextlib.suppress(ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        logger.info("raised the open-file limit from %d to %d", soft, target)

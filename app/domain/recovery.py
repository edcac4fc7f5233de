"""Ending the runs a previous process (or this one, at shutdown) left active.

A run that was cancelling ends ``cancelled``; any other ends ``failed`` with the
given reason, or goes back to the queue when it has attempts left (``retry``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime

from app.domain.ports import Transition
from app.domain.recording import error_data
from app.domain.retry import requeue_instead
from app.domain.runs import EventType, FailureReason, Run, RunError, RunStatus


def interrupted_writes(
    active: Sequence[Run],
    detail: str,
    reason: FailureReason,
    now: datetime,
    next_save_version: Callable[[], str],
) -> list[Transition]:
    """The transitions that end (or requeue) each of the ``active`` runs."""
    writes: list[Transition] = []
    for run in active:
        if run.status is RunStatus.CANCELLING:
            writes.append(
                Transition(
                    run.run_id,
                    RunStatus.CANCELLED,
                    now,
                    EventType.RUN_CANCELLED,
                    event_data={"detail": detail},
                )
            )
            continue
        error = RunError(reason, "RunInterrupted", detail)
        failed = Transition(
            run.run_id,
            RunStatus.FAILED,
            now,
            EventType.RUN_FAILED,
            error=error,
            event_data=error_data(error),
        )
        # Requeued runs are picked up by the next start (or this one).
        writes.append(
            requeue_instead(failed, run.attempts, run.spec.max_attempts, next_save_version)
        )
    return writes

"""Ending the runs a previous process (or this one, at shutdown) left active.

A run that was cancelling ends ``cancelled``. A run whose latest attempt no worker
acknowledged goes back to the queue with that attempt given back, whatever its
``max_attempts``: a worker runs no node before its acknowledgement is recorded, so
nothing of the attempt ran. Any other ends ``failed`` with the given reason, or goes
back to the queue when it has attempts left (``retry``).
"""

from __future__ import annotations

from collections.abc import Sequence
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
        if run.acknowledged_attempts < run.attempts:
            writes.append(_give_back(run, now))
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
        writes.append(requeue_instead(failed, run.attempts, run.spec.max_attempts))
    return writes


NOT_HANDED_OVER = "not_handed_over"


def _give_back(run: Run, now: datetime) -> Transition:
    """Back to the queue, the attempt not counted, under the same save version (Kedro
    never received it, so nothing was saved under it) and so in the same place."""
    return Transition(
        run.run_id,
        RunStatus.QUEUED,
        now,
        EventType.RUN_REQUEUED,
        event_data={
            "attempt": run.attempts,
            "max_attempts": run.spec.max_attempts,
            "reason": NOT_HANDED_OVER,
            "message": "no worker had taken the run; the attempt does not count",
            "next_save_version": run.current_save_version,
        },
        save_version=run.attempt_save_version,
        attempt_given_back=True,
    )

"""Opt-in retry: a run lost with its worker, or with the service, goes back to the queue
while it has attempts left (``RunSpec.max_attempts``, 1 by default: no retry).

Only losses are retried: the worker process died, or the service stopped or crashed
with the run active. A pipeline that raised, a run past its timeout and a cancelled
run are never retried. A retry runs the request exactly as accepted (it never turns on
``only_missing_outputs``), under a fresh save version: Kedro refuses to save a
versioned dataset over a version that exists, and the lost attempt may have written
some of them already.
"""

from __future__ import annotations

from app.domain.ports import Transition
from app.domain.runs import EventType, FailureReason, RunStatus

RETRIED_REASONS = frozenset({FailureReason.WORKER_LOST, FailureReason.INTERRUPTED})


def requeue_instead(move: Transition, attempts: int, max_attempts: int) -> Transition:
    """``move``, or the move back to ``queued`` that replaces it when ``move`` fails the
    run for a lost worker or service and the run has had fewer than ``max_attempts``
    attempts. The requeue's event says which attempt was lost and why; the store adds
    the fresh save version it allocates for the next attempt (``new_save_version``)."""
    lost = move.error is not None and move.error.reason in RETRIED_REASONS
    if move.target is not RunStatus.FAILED or not lost or attempts >= max_attempts:
        return move
    assert move.error is not None
    return Transition(
        move.run_id,
        RunStatus.QUEUED,
        move.at,
        EventType.RUN_REQUEUED,
        event_data={
            "attempt": attempts,
            "max_attempts": max_attempts,
            "reason": str(move.error.reason),
            "message": move.error.message,
        },
        new_save_version=True,
    )

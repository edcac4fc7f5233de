"""What a worker's report, a lost worker or a timeout becomes in the store: pure rules.

Every path that ends an attempt goes through here: the reports of a live worker
(``write_for_report``), a run found active with no worker left, at start-up, at shutdown
or (in cluster mode) when its replica's lease expired (``lost_run_writes``), and a run
still queued past its timeout (``queued_past_timeout``). A worker's loss is first
proposed as ``failed(worker_lost)`` (or the reason the caller gives), then settled by
one ordered list of rules, ``LOSS_RULES``; the first rule that applies decides, except
``retry_lost_attempt``, which is applied last to whatever failure the others left:

1. ``loss_after_timeout_is_timeout``: the service stopped the run for running past its
   timeout, so the run failed ``timeout``.
2. ``loss_while_stopping_is_interrupted``: the pool stopped its workers because the
   service is stopping, so the run was ``interrupted``.
3. ``loss_after_cancel_is_cancel``: a cancel was asked for and the worker was killed after
   the grace period (or the run was ``cancelling`` when its worker vanished): cancelled.
4. ``unacknowledged_attempt_is_given_back``: no worker acknowledged the latest attempt, so
   none of its nodes ran: back to the queue, the attempt not counted (known only from the
   store, so only for runs found active).
5. ``retry_lost_attempt``: a run lost (``worker_lost`` or ``interrupted``) with attempts
   left goes back to the queue under a fresh save version (``max_attempts``).

A pipeline that raised, a run past its timeout and a cancelled run are never retried. A
retry runs the request exactly as accepted, under a fresh save version: Kedro refuses to
save a versioned dataset over a version that exists, and the lost attempt may have
written some of them already.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime

from app.domain import reports
from app.domain.ports import (
    AcknowledgeAttempt,
    AppendEvent,
    AppendLogs,
    RecordOutputs,
    StoreWrite,
    Transition,
)
from app.domain.runs import EventType, FailureReason, Run, RunError, RunStatus

SHUTDOWN_DETAIL = "the service shut down before the run finished"
NOT_RECORDED_TYPE = "RunNotRecorded"
NOT_HANDED_OVER = "not_handed_over"
LATE_CANCEL_DETAIL = "the cancel came after the last node had begun; every node completed"
GRACE_KILL_DETAIL = "worker killed after the cancel grace period"
RETRIED_REASONS = frozenset({FailureReason.WORKER_LOST, FailureReason.INTERRUPTED})

_ENDS = (reports.RunSucceeded, reports.RunFailed, reports.RunCancelled)


@dataclass(frozen=True)
class Attempt:
    """What the rules may know of a run's attempt when it ends. ``found_active``: the run
    was found active in the store with no worker left (recovery); only then is
    ``acknowledged`` known (a live worker that was lost before acknowledging is a loss)."""

    run_id: str
    attempts: int = 1
    max_attempts: int = 1
    timed_out: bool = False
    stopping: bool = False
    cancel_requested: bool = False
    found_active: bool = False
    acknowledged: bool = True
    attempt_save_version: str | None = None  # the latest retry's, for a give-back
    current_save_version: str | None = None


LossRule = Callable[[Transition, Attempt], Transition | None]


def error_data(error: RunError) -> dict[str, object]:
    """A failure as the data of its ``run_failed`` event."""
    return {"reason": str(error.reason), "type": error.type, "message": error.message}


def failed(run_id: str, at: datetime, error: RunError) -> Transition:
    return Transition(
        run_id,
        RunStatus.FAILED,
        at,
        EventType.RUN_FAILED,
        error=error,
        event_data=error_data(error),
    )


def _lost(move: Transition) -> bool:
    return move.error is not None and move.error.reason is FailureReason.WORKER_LOST


def loss_after_timeout_is_timeout(move: Transition, attempt: Attempt) -> Transition | None:
    if not (_lost(move) and attempt.timed_out):
        return None
    message = "the run ran past its timeout and was stopped"
    return failed(move.run_id, move.at, RunError(FailureReason.TIMEOUT, "RunTimeout", message))


def loss_while_stopping_is_interrupted(move: Transition, attempt: Attempt) -> Transition | None:
    if not (_lost(move) and attempt.stopping):
        return None
    error = RunError(FailureReason.INTERRUPTED, "RunInterrupted", SHUTDOWN_DETAIL)
    return failed(move.run_id, move.at, error)


def loss_after_cancel_is_cancel(move: Transition, attempt: Attempt) -> Transition | None:
    if not attempt.cancel_requested or move.error is None:
        return None
    if not (attempt.found_active or _lost(move)):
        return None
    if move.error.reason not in RETRIED_REASONS:
        return None  # the pipeline itself raised: that is what the run's end says
    detail = move.error.message if attempt.found_active else GRACE_KILL_DETAIL
    return Transition(
        move.run_id,
        RunStatus.CANCELLED,
        move.at,
        EventType.RUN_CANCELLED,
        event_data={"detail": detail},
    )


def unacknowledged_attempt_is_given_back(move: Transition, attempt: Attempt) -> Transition | None:
    """Back to the queue, the attempt not counted, under the same save version (Kedro
    never received it, so nothing was saved under it) and so in the same place."""
    if not attempt.found_active or attempt.acknowledged:
        return None
    message = "no worker had taken the run; the attempt does not count"
    requeue = _requeue(move, attempt, NOT_HANDED_OVER, message)
    return replace(
        requeue,
        event_data={**requeue.event_data, "next_save_version": attempt.current_save_version},
        save_version=attempt.attempt_save_version,
        attempt_given_back=True,
    )


def _requeue(move: Transition, attempt: Attempt, reason: str, message: str) -> Transition:
    """Back to the queue: the requeue's event says which attempt ended, and why."""
    data: dict[str, object] = {
        "attempt": attempt.attempts,
        "max_attempts": attempt.max_attempts,
        "reason": reason,
        "message": message,
    }
    return Transition(
        move.run_id, RunStatus.QUEUED, move.at, EventType.RUN_REQUEUED, event_data=data
    )


LOSS_RULES: tuple[LossRule, ...] = (
    loss_after_timeout_is_timeout,
    loss_while_stopping_is_interrupted,
    loss_after_cancel_is_cancel,
    unacknowledged_attempt_is_given_back,
)


def settle(move: Transition, attempt: Attempt) -> Transition:
    """The write that ends an attempt, ``move`` as proposed: the first of ``LOSS_RULES``
    that applies, then ``retry_lost_attempt``."""
    for rule in LOSS_RULES:
        decided = rule(move, attempt)
        if decided is not None:
            move = decided
            break
    return retry_lost_attempt(move, attempt)


def retry_lost_attempt(move: Transition, attempt: Attempt) -> Transition:
    """``move``, or the move back to ``queued`` that replaces it when ``move`` fails the
    run for a lost worker or service and the run has had fewer than ``max_attempts``
    attempts. The requeue's event says which attempt was lost and why; the store adds
    the fresh save version it allocates for the next attempt (``new_save_version``)."""
    lost = move.error is not None and move.error.reason in RETRIED_REASONS
    if move.target is not RunStatus.FAILED or not lost or attempt.attempts >= attempt.max_attempts:
        return move
    assert move.error is not None
    requeue = _requeue(move, attempt, str(move.error.reason), move.error.message)
    return replace(requeue, new_save_version=True)


def write_for_report(
    report: reports.Report,
    attempt: Attempt,
    unrecordable: Mapping[str, str] | None = None,
) -> StoreWrite | None:
    """The write that records a live worker's ``report`` about ``attempt``. A run in
    ``unrecordable`` (run id: the store's error type) has its reports dropped, and its
    end, however it ended, is recorded as ``not_recorded``."""
    run_id = getattr(report, "run_id", None)
    if unrecordable and run_id in unrecordable:
        if isinstance(report, _ENDS):
            return not_recorded(report.run_id, report.at, unrecordable[report.run_id])
        return None
    match report:
        case reports.RunStarted(run_id):
            return AcknowledgeAttempt(run_id)
        case reports.RunLogs(run_id, lines, dropped):
            return AppendLogs(run_id, lines, dropped)
        case reports.RunOutputs(run_id, saved, free):
            return RecordOutputs(run_id, {"saved": list(saved), "free": list(free)})
        case reports.NodeStarted(run_id, node, at):
            return AppendEvent(run_id, EventType.NODE_STARTED, at, node)
        case reports.NodeCompleted(run_id, node, at):
            return AppendEvent(run_id, EventType.NODE_COMPLETED, at, node)
        case reports.NodeFailed(run_id, node, at, error_type, message):
            failure: dict[str, object] = {"type": error_type, "message": message}
            return AppendEvent(run_id, EventType.NODE_FAILED, at, node, failure)
        case reports.RunSucceeded(run_id, at):
            # A cancel stops a run at its next node boundary; one that came after the
            # last node began found none, and every node's work was done and saved,
            # so the run succeeded, and its end says the cancel came too late.
            late: dict[str, object] = {"cancel_requested": True, "detail": LATE_CANCEL_DETAIL}
            data = late if attempt.cancel_requested else {}
            return Transition(
                run_id, RunStatus.SUCCEEDED, at, EventType.RUN_SUCCEEDED, event_data=data
            )
        case reports.RunCancelled(run_id, at, detail):
            return Transition(
                run_id,
                RunStatus.CANCELLED,
                at,
                EventType.RUN_CANCELLED,
                event_data={"detail": detail},
            )
        case reports.RunFailed(run_id, at, reason, error_type, message):
            proposed = failed(run_id, at, RunError(reason, error_type, message))
            return settle(proposed, attempt)
    return None


def lost_run_writes(
    active: Sequence[Run],
    detail: str,
    reason: FailureReason,
    now: datetime,
) -> list[Transition]:
    """The transitions that end (or requeue) each of the ``active`` runs, whose workers
    are gone: a previous process's (at start-up), this one's (at shutdown) or a dead
    replica's (its lease expired)."""
    writes: list[Transition] = []
    for run in active:
        attempt = Attempt(
            run.run_id,
            attempts=run.attempts,
            max_attempts=run.spec.max_attempts,
            cancel_requested=run.status is RunStatus.CANCELLING,
            found_active=True,
            acknowledged=run.acknowledged_attempts >= run.attempts,
            attempt_save_version=run.attempt_save_version,
            current_save_version=run.current_save_version,
        )
        proposed = failed(run.run_id, now, RunError(reason, "RunInterrupted", detail))
        writes.append(settle(proposed, attempt))
    return writes


def queued_past_timeout(run_id: str, limit_seconds: float, now: datetime) -> Transition:
    message = f"the run was still queued {limit_seconds:g}s after it was submitted"
    return failed(run_id, now, RunError(FailureReason.TIMEOUT, "RunTimeout", message))


def not_recorded(run_id: str, at: datetime, cause: str) -> Transition:
    """The end of a run whose reports the store refused (``cause``: the error's type),
    so they were dropped and its worker stopped. Never retried: the same run would
    write the same reports again."""
    message = f"the service could not record what the run reported ({cause}); the run was stopped"
    return failed(run_id, at, RunError(FailureReason.ERROR, NOT_RECORDED_TYPE, message))

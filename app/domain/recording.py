"""What the store records for each worker report: an event, or a state transition."""

from __future__ import annotations

from collections.abc import Mapping
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
from app.domain.runs import EventType, FailureReason, RunError, RunStatus

SHUTDOWN_DETAIL = "the service shut down before the run finished"
NOT_RECORDED_TYPE = "RunNotRecorded"
LATE_CANCEL_DETAIL = "the cancel came after the last node had begun; every node completed"

_ENDS = (reports.RunSucceeded, reports.RunFailed, reports.RunCancelled)


def error_data(error: RunError) -> dict[str, object]:
    """A failure as the data of its ``run_failed`` event."""
    return {"reason": str(error.reason), "type": error.type, "message": error.message}


def store_write_for(
    report: reports.Report,
    *,
    stopping: bool,
    cancel_pending: set[str],
    timed_out: frozenset[str] | set[str] = frozenset(),
    unrecordable: Mapping[str, str] | None = None,
) -> StoreWrite | None:
    """The write that records ``report``. A worker lost while the service stops means
    the run was interrupted; one lost after a cancel (the grace-period kill) means the
    run was cancelled; one lost after its timeout (the service killed it) means the run
    timed out. A run in ``unrecordable`` (run id: the store's error type) has its
    reports dropped, and its end, however it ended, is recorded as ``not_recorded``."""
    run_id = getattr(report, "run_id", None)
    if unrecordable and run_id in unrecordable:
        if isinstance(report, _ENDS):
            return not_recorded(report.run_id, report.at, unrecordable[report.run_id])
        return None
    match report:
        case reports.CapacityChanged():
            return None
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
            return AppendEvent(
                run_id,
                EventType.NODE_FAILED,
                at,
                node,
                {"type": error_type, "message": message},
            )
        case reports.RunSucceeded(run_id, at):
            # A cancel stops a run at its next node boundary; one that came after the
            # last node began found none, and every node's work was done and saved,
            # so the run succeeded, and its end says the cancel came too late.
            late_cancel = {"cancel_requested": True, "detail": LATE_CANCEL_DETAIL}
            data = late_cancel if run_id in cancel_pending else {}
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
            if reason is FailureReason.WORKER_LOST and run_id in timed_out:
                reason = FailureReason.TIMEOUT
                error_type, message = "RunTimeout", "the run ran past its timeout and was stopped"
            if reason is FailureReason.WORKER_LOST and stopping:
                # The pool stopped its workers because the service is stopping.
                reason = FailureReason.INTERRUPTED
                error_type, message = "RunInterrupted", SHUTDOWN_DETAIL
            if reason is FailureReason.WORKER_LOST and run_id in cancel_pending:
                return Transition(
                    run_id,
                    RunStatus.CANCELLED,
                    at,
                    EventType.RUN_CANCELLED,
                    event_data={"detail": "worker killed after the cancel grace period"},
                )
            error = RunError(reason, error_type, message)
            return Transition(
                run_id,
                RunStatus.FAILED,
                at,
                EventType.RUN_FAILED,
                error=error,
                event_data=error_data(error),
            )
    return None


def not_recorded(run_id: str, at: datetime, cause: str) -> Transition:
    """The end of a run whose reports the store refused (``cause``: the error's type),
    so they were dropped and its worker stopped. Never retried: the same run would
    write the same reports again."""
    error = RunError(
        FailureReason.ERROR,
        NOT_RECORDED_TYPE,
        f"the service could not record what the run reported ({cause}); the run was stopped",
    )
    failed, data = RunStatus.FAILED, error_data(error)
    return Transition(run_id, failed, at, EventType.RUN_FAILED, error=error, event_data=data)

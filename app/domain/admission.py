"""Admission: whether a run may be taken (its timeout, the queue's cap) and how many
workers are free to start runs. Reads the dispatch queue; changes nothing."""

from __future__ import annotations

from app.domain.dispatch import DispatchQueue
from app.domain.ports import RunExecutor
from app.domain.runs import RunSpec
from app.errors import FieldError, InvalidRunRequest, QueueFull


class Admission:
    def __init__(
        self,
        queue: DispatchQueue,
        executor: RunExecutor,
        *,
        max_queued_runs: int,
        max_timeout_seconds: float,
    ) -> None:
        self._queue = queue
        self._executor = executor
        self.max_queued = max_queued_runs
        self._max_timeout = max_timeout_seconds

    def check_timeout(self, spec: RunSpec) -> None:
        """Raise InvalidRunRequest for a timeout above the server's maximum."""
        check_timeout(spec, self._max_timeout)

    def refuse_if_full(self) -> None:
        """Raise QueueFull before any planning when the run could only be queued and the
        queue is full: under a burst, refusals then cost no configuration resolution.
        ``RunService._accept`` decides again, under its lock, for runs that get past this."""
        if self.free_slots() == 0 and self._queue.queued_count >= self.max_queued:
            raise self.queue_full()

    def queue_full(self) -> QueueFull:
        return queue_full(self.max_queued, self._queue.queued_count, self._executor.ready_workers)

    def free_slots(self) -> int:
        # A worker turns idle before the service has applied its run's end; until
        # then that run still holds its slot here, so a new run cannot overtake a
        # queued one that only waited for it.
        free = min(
            self._executor.idle_slots(),
            self._executor.ready_workers - self._queue.running_count,
        )
        return max(0, free)


def check_timeout(spec: RunSpec, max_timeout: float) -> None:
    """Raise InvalidRunRequest for a timeout above the server's maximum."""
    if spec.timeout_seconds is not None and spec.timeout_seconds > max_timeout:
        raise InvalidRunRequest(
            "timeout_seconds is above the server's maximum.",
            [
                FieldError(
                    ("body", "timeout_seconds"),
                    f"at most {max_timeout:g} seconds on this server",
                )
            ],
        )


def queue_full(max_queued: int, queued: int, ready_workers: int) -> QueueFull:
    """The refusal of a run the queue has no room for, with a rough wait, in whole
    seconds, for a queue slot: one run's worth per worker."""
    workers = max(1, ready_workers)
    return QueueFull(
        f"The queue is full (at most {max_queued} runs wait); retry later.",
        retry_after_seconds=max(1, min(60, queued // (workers * 10) + 1)),
    )

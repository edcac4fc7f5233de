"""When a run is stopped for time: a cancel not obeyed within the grace period, or a
run not ended within its timeout. Also which runs were asked to stop or timed out,
so the worker's loss is recorded as a cancel or a timeout. Event-loop only.

A run's timeout counts from its submission, not from its start: it bounds what the
caller waits for (the queue, the wait for a worker that cannot start, every attempt),
so a run still queued past it fails ``timeout`` too, and a retry does not reset it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import datetime, timedelta

from app.domain.ports import RunExecutor
from app.domain.runs import utcnow

logger = logging.getLogger("kedro_runs.service")


class Deadlines:
    def __init__(
        self,
        is_running: Callable[[str], bool],
        executor: RunExecutor,
        *,
        cancel_grace_seconds: float,
        default_timeout_seconds: float,
        on_timeout: Callable[[str, float], None],
    ) -> None:
        """``on_timeout(run_id, timeout)`` is called on the event loop when a run reaches
        its timeout; the service stops it (``stop_past_timeout``) or, if it is still
        queued, fails it."""
        self._is_running = is_running
        self._executor = executor
        self._cancel_grace_seconds = cancel_grace_seconds
        self._default_timeout = default_timeout_seconds
        self._on_timeout = on_timeout
        self._grace_timers: dict[str, asyncio.TimerHandle] = {}
        self._timeout_timers: dict[str, asyncio.TimerHandle] = {}
        self.cancel_pending: set[str] = set()  # running runs asked to stop
        self.timed_out: set[str] = set()  # runs killed for running past their timeout

    def request_cancel(self, run_id: str) -> None:
        """Ask the run's worker to stop; kill it if the run is still running after the
        grace period."""
        self.cancel_pending.add(run_id)
        self._executor.request_cancel(run_id)
        self._grace_timers[run_id] = asyncio.get_running_loop().call_later(
            self._cancel_grace_seconds, self._kill_after_grace, run_id
        )

    def arm_timeout(self, run_id: str, timeout_seconds: float | None, queued_at: datetime) -> None:
        """Call ``on_timeout`` once the run's timeout (or the default) has passed since
        ``queued_at``; at once if it already has (a run recovered after a restart)."""
        timeout = timeout_seconds or self._default_timeout
        remaining = queued_at + timedelta(seconds=timeout) - utcnow()
        earlier = self._timeout_timers.pop(run_id, None)
        if earlier is not None:  # armed again (a retry claimed here): one timer a run
            earlier.cancel()
        self._timeout_timers[run_id] = asyncio.get_running_loop().call_later(
            max(0.0, remaining.total_seconds()), self._time_out, run_id, timeout
        )

    def attempt_ended(self, run_id: str) -> None:
        """The run's attempt is over: its grace period ends (its timeout goes on while
        it is queued for another attempt)."""
        self.cancel_pending.discard(run_id)
        timer = self._grace_timers.pop(run_id, None)
        if timer is not None:
            timer.cancel()

    def run_ended(self, run_id: str) -> None:
        timer = self._timeout_timers.pop(run_id, None)
        if timer is not None:
            timer.cancel()
        self.timed_out.discard(run_id)

    def cancel_all(self) -> None:
        """Shutdown: no worker is killed by a deadline any more."""
        for timer in [*self._grace_timers.values(), *self._timeout_timers.values()]:
            timer.cancel()

    def stop_past_timeout(self, run_id: str, timeout: float) -> None:
        """Kill the worker of a running run past its timeout; its loss is then recorded
        as ``failed(timeout)``."""
        logger.warning(
            "run %s ran past its timeout of %gs; stopping it",
            run_id,
            timeout,
            extra={"run_id": run_id},
        )
        self.timed_out.add(run_id)
        self._executor.kill(run_id)

    def _kill_after_grace(self, run_id: str) -> None:
        self._grace_timers.pop(run_id, None)
        if self._is_running(run_id) and self._executor.kill(run_id):
            logger.warning(
                "run %s did not stop within %.1fs of cancel; its worker was killed",
                run_id,
                self._cancel_grace_seconds,
                extra={"run_id": run_id},
            )

    def _time_out(self, run_id: str, timeout: float) -> None:
        self._timeout_timers.pop(run_id, None)
        self._on_timeout(run_id, timeout)

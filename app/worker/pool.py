"""ProcessWorkerPool: N worker processes, each executing one run at a time.

Why processes: Kedro's OmegaConf resolvers for ``runtime_params`` and ``oc.env``
are process-global, so two runs resolving configuration in one process read each
other's params. A process per slot also gives real CPU parallelism and a hard
stop (kill) for a run that will not stop.

Each worker has two one-way pipes: jobs (API → worker) and results (worker → API).
A reader thread per worker blocks on the results pipe and hands every message to
the event loop; end-of-file on that pipe means the process died, and its run (if
any) is reported lost. A dead worker is replaced, with a back-off if workers keep
dying before they become ready, and a worker that cannot be started at all (out of
file descriptors, processes or memory) is tried again with a back-off for as long as
the pool runs: runs wait for it, within their timeout.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import multiprocessing
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess

from app import faults
from app.domain import reports
from app.domain.ports import RunAssignment
from app.domain.runs import FailureReason, utcnow
from app.worker.messages import CancelRun, ProceedWithRun, StartRun, WorkerReady
from app.worker.process import WorkerConfig, worker_main
from app.worker.spawning import open_worker_pipes, raise_open_file_limit

logger = logging.getLogger("kedro_runs.pool")

_MAX_BACKOFF_SECONDS = 30.0


@dataclass(eq=False)
class _Worker:
    slot: int
    process: BaseProcess
    jobs: Connection
    results: Connection
    ready: bool = False
    run_id: str | None = None
    exited: bool = False
    reader: threading.Thread | None = field(default=None, repr=False)


class ProcessWorkerPool:
    """The RunExecutor port over local processes. Methods other than the reader
    threads' run on the event loop's thread."""

    def __init__(self, config: WorkerConfig, size: int, start_timeout: float = 120.0) -> None:
        self._config = config
        self._size = size
        self._start_timeout = start_timeout
        self._context = multiprocessing.get_context("spawn")
        self._workers: dict[int, _Worker] = {}
        self._deliver: Callable[[reports.Report], None] = lambda report: None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping = False
        self._early_deaths = 0
        self._failed_spawns = 0  # in a row; a worker that becomes ready resets it
        # Claimed runs with no live idle worker yet (their worker died between the
        # claim and the hand-over): the next worker that is ready takes them.
        self._pending: collections.deque[RunAssignment] = collections.deque()

    async def start(self, deliver: Callable[[reports.Report], None]) -> None:
        self._deliver = deliver
        self._loop = asyncio.get_running_loop()
        raise_open_file_limit()
        for slot in range(self._size):
            self._respawn(slot)

    async def stop(self) -> None:
        """Stop every worker: close its job pipe (it exits), then terminate stragglers."""
        self._stopping = True
        workers = list(self._workers.values())
        for worker in workers:
            with contextlib.suppress(OSError):
                worker.jobs.close()
        loop = asyncio.get_running_loop()
        for worker in workers:
            await loop.run_in_executor(None, worker.process.join, 5)
            if worker.process.is_alive():
                worker.process.kill()
                await loop.run_in_executor(None, worker.process.join, 5)
            if worker.reader is not None:
                await loop.run_in_executor(None, worker.reader.join, 5)
        self._workers.clear()

    # -- RunExecutor ------------------------------------------------------------

    def idle_slots(self) -> int:
        idle = sum(1 for worker in self._workers.values() if _is_idle(worker))
        return max(0, idle - len(self._pending))

    @property
    def ready_workers(self) -> int:
        return sum(1 for worker in self._workers.values() if worker.ready and not worker.exited)

    def execute(self, assignment: RunAssignment) -> None:
        self._pending.append(assignment)
        self._hand_over()

    def _hand_over(self) -> None:
        while self._pending:
            worker = next((w for w in self._workers.values() if _is_idle(w)), None)
            if worker is None:
                return
            self._send(worker, self._pending.popleft())

    def _send(self, worker: _Worker, assignment: RunAssignment) -> None:
        worker.run_id = assignment.run_id
        try:
            worker.jobs.send(StartRun(assignment))
        except OSError:
            # The process died and its exit is not processed yet: the run never
            # reached it, so it waits for the next worker instead of being lost.
            logger.warning(
                "worker %s is gone; run %s waits for the next worker",
                worker.process.pid,
                assignment.run_id,
            )
            worker.run_id = None
            worker.exited = True
            self._pending.appendleft(assignment)
            worker.process.kill()

    def proceed(self, run_id: str) -> None:
        worker = self._worker_running(run_id)
        if worker is not None:
            with contextlib.suppress(OSError):  # it died: its exit reports the run
                worker.jobs.send(ProceedWithRun(run_id))

    def request_cancel(self, run_id: str) -> None:
        if self._drop_pending(run_id):
            self._deliver(reports.RunCancelled(run_id, utcnow(), "cancelled before it started"))
            return
        worker = self._worker_running(run_id)
        if worker is not None:
            with contextlib.suppress(OSError):
                worker.jobs.send(CancelRun(run_id))

    def kill(self, run_id: str) -> bool:
        if self._drop_pending(run_id):
            # Stopped by force (its timeout, or a cancel's grace period) before any
            # worker took it: reported as lost, which the service records as the
            # timeout or cancel that it was.
            self._deliver(
                reports.RunFailed(
                    run_id,
                    utcnow(),
                    FailureReason.WORKER_LOST,
                    "WorkerLost",
                    "stopped while waiting for a worker",
                )
            )
            return True
        worker = self._worker_running(run_id)
        if worker is None or not worker.process.is_alive():
            return False
        worker.process.kill()
        return True

    def _drop_pending(self, run_id: str) -> bool:
        for assignment in self._pending:
            if assignment.run_id == run_id:
                self._pending.remove(assignment)
                return True
        return False

    # -- process management -----------------------------------------------------

    def _spawn(self, slot: int) -> None:
        """Start a worker in ``slot``. Raises (OSError, RuntimeError) with nothing of it
        left open or running when the process, its pipes or its reader cannot be made."""
        with faults.spawn_attempt():
            jobs_out, jobs_in, results_out, results_in = open_worker_pipes(self._context)
        process = self._context.Process(
            target=worker_main,
            args=(self._config, jobs_out, results_in),
            name=f"kedro-runs-worker-{slot}",
            daemon=True,
        )
        try:
            process.start()
        except BaseException:
            jobs_in.close()
            results_out.close()
            raise
        finally:
            # The child holds its own ends now (or never will); closing ours makes EOF
            # mean "dead".
            jobs_out.close()
            results_in.close()
        worker = _Worker(slot, process, jobs_in, results_out)
        worker.reader = threading.Thread(
            target=self._read, args=(worker,), daemon=True, name=f"worker-reader-{slot}"
        )
        try:
            worker.reader.start()
        except BaseException:
            process.kill()  # it would never be heard, nor its death noticed
            process.join(5)
            jobs_in.close()
            results_out.close()
            raise
        self._workers[slot] = worker
        assert self._loop is not None
        self._loop.call_later(self._start_timeout, self._kill_if_not_ready, worker)

    def _kill_if_not_ready(self, worker: _Worker) -> None:
        if not worker.ready and not worker.exited and worker.process.is_alive():
            logger.error(
                "worker %s not ready after %.0fs; killing it",
                worker.process.pid,
                self._start_timeout,
            )
            worker.process.kill()

    def _read(self, worker: _Worker) -> None:
        assert self._loop is not None
        try:
            while True:
                message = worker.results.recv()
                self._loop.call_soon_threadsafe(self._on_message, worker, message)
        except (EOFError, OSError):
            pass
        with contextlib.suppress(RuntimeError):  # the loop may be closed at shutdown
            self._loop.call_soon_threadsafe(self._on_exit, worker)

    def _on_message(self, worker: _Worker, message: object) -> None:
        if isinstance(message, WorkerReady):
            worker.ready = True
            self._early_deaths = 0
            self._failed_spawns = 0
            logger.info("worker %s ready in slot %d", message.pid, worker.slot)
            self._hand_over()
            self._deliver(reports.CapacityChanged())
            return
        finished = isinstance(
            message, reports.RunSucceeded | reports.RunFailed | reports.RunCancelled
        )
        if finished:
            worker.run_id = None
        self._deliver(message)  # type: ignore[arg-type]
        if finished:
            self._hand_over()

    def _on_exit(self, worker: _Worker) -> None:
        worker.exited = True
        worker.process.join(timeout=0.5)  # it has closed its pipe: it is exiting
        code = worker.process.exitcode
        with contextlib.suppress(OSError):
            worker.jobs.close()
        worker.results.close()
        if worker.run_id is not None:
            self._deliver(
                reports.RunFailed(
                    worker.run_id,
                    utcnow(),
                    FailureReason.WORKER_LOST,
                    "WorkerLost",
                    f"the worker process {worker.process.pid} died (exit code {code}) "
                    "while executing the run",
                )
            )
            worker.run_id = None
        if self._stopping or self._workers.get(worker.slot) is not worker:
            return
        del self._workers[worker.slot]
        if not worker.ready:
            self._early_deaths += 1
            logger.error(
                "worker in slot %d exited before it was ready (exit code %s)", worker.slot, code
            )
        else:
            logger.warning(
                "worker %s in slot %d died (exit code %s); replacing it",
                worker.process.pid,
                worker.slot,
                code,
            )
        delay = (
            min(_MAX_BACKOFF_SECONDS, 0.5 * (2**self._early_deaths)) if self._early_deaths else 0.0
        )
        assert self._loop is not None
        self._loop.call_later(delay, self._respawn, worker.slot)

    def _respawn(self, slot: int) -> None:
        """Start a worker in ``slot``, or try again after a back-off if that fails."""
        if self._stopping or slot in self._workers:
            return
        try:
            self._spawn(slot)
        except Exception as error:  # a slot given up is a pool that never runs again
            self._failed_spawns += 1
            delay = min(_MAX_BACKOFF_SECONDS, 0.5 * (2 ** min(self._failed_spawns, 10)))
            logger.error(
                "could not start a worker in slot %d (%s: %s); trying again in %.1fs",
                slot,
                type(error).__name__,
                error,
                delay,
            )
            assert self._loop is not None
            self._loop.call_later(delay, self._respawn, slot)

    def _worker_running(self, run_id: str) -> _Worker | None:
        return next((w for w in self._workers.values() if w.run_id == run_id), None)


def _is_idle(worker: _Worker) -> bool:
    return worker.ready and worker.run_id is None and not worker.exited

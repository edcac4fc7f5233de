"""The body of one worker process (started with the ``spawn`` method).

The main thread executes runs; a listener thread reads the job pipe, so a
cancel request reaches a busy worker. When the API process goes away the job
pipe closes and the worker exits at once, even mid-run, so a run can never go
on writing files behind a restarted service.
"""

from __future__ import annotations

import logging
import os
import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path

from app.domain import reports
from app.domain.ports import RunAssignment
from app.domain.redaction import environment_secrets_in, remember_secrets
from app.domain.runs import utcnow
from app.kedro_bridge.project import ProjectLocation, use_plain_logging
from app.worker.messages import CancelRun, ProceedWithRun, StartRun, WorkerReady


@dataclass(frozen=True)
class WorkerConfig:
    location: ProjectLocation
    log_level: str = "WARNING"  # what the worker prints to stderr
    run_log_level: str = "INFO"  # what is captured into each run's log
    run_log_cap: int = 10_000
    output_inline_max_bytes: int = 64 * 1024
    data_root: Path | None = None  # None: <project>/data, as the API process's guard
    allowed_protocols: tuple[str, ...] = ("file",)


def worker_main(config: WorkerConfig, jobs: Connection, results: Connection) -> None:
    """Entry point of a worker process. Never returns normally."""
    import signal

    from app.kedro_bridge.execution import WorkerSession

    # Ctrl-C in a terminal signals the whole process group. What it means is the API
    # process's to decide (stop at once, record the runs interrupted); it then stops us.
    signal.signal(signal.SIGINT, signal.SIG_IGN)

    send_lock = threading.Lock()

    def send(message: object) -> None:
        with send_lock:
            results.send(message)

    session = WorkerSession(
        config.location,
        send,
        config.run_log_cap,
        config.output_inline_max_bytes,
        config.data_root,
        config.allowed_protocols,
    )
    # Before anything is logged: what this process must mask wherever it shows.
    remember_secrets(environment_secrets_in(os.environ) | session.known_secrets())
    use_plain_logging(config.log_level, capture_level=config.run_log_level)
    session.logs.setLevel(config.run_log_level.upper())
    logging.getLogger().addHandler(session.logs)
    inbox: queue.SimpleQueue[RunAssignment] = queue.SimpleQueue()
    reporter = session.reporter
    threading.Thread(
        target=_listen,
        args=(jobs, inbox, reporter.request_cancel, reporter.proceed, session.close),
        daemon=True,
        name="job-listener",
    ).start()
    send(WorkerReady(os.getpid()))
    while True:
        assignment = inbox.get()
        # The acknowledgement: the run's first node waits until the service has
        # recorded it (``ProceedWithRun``), so a service that dies before then finds
        # the attempt not started and gives it back.
        send(reports.RunStarted(assignment.run_id, utcnow(), os.getpid()))
        report: reports.RunReport = session.execute(assignment)
        send(report)


def _listen(
    jobs: Connection,
    inbox: queue.SimpleQueue[RunAssignment],
    cancel: Callable[[str], None],
    proceed: Callable[[str], None],
    close_session: Callable[[], None],
) -> None:
    try:
        while True:
            message = jobs.recv()
            if isinstance(message, StartRun):
                inbox.put(message.assignment)
            elif isinstance(message, CancelRun):
                cancel(message.run_id)
            elif isinstance(message, ProceedWithRun):
                proceed(message.run_id)
    except (EOFError, OSError):
        # The API process is gone (or closed us): stop now, mid-run or not.
        try:
            close_session()
        finally:
            os._exit(0)

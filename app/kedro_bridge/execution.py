"""Executing one run inside a worker process, with Kedro hooks reporting its progress.

The worker's session keeps the project's own hooks (``settings.HOOKS`` and
plugin entry points); :class:`RunReporter` is registered beside them. Kedro's
hooks see the save version as ``run_id``; the reporter knows which run of ours
that is because a worker executes one run at a time.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from kedro.framework.hooks import hook_impl

from app.domain import reports
from app.domain.ports import RunAssignment
from app.domain.redaction import redact, run_secrets, secrets_in
from app.domain.runs import FailureReason, utcnow
from app.kedro_bridge import catalog_guard
from app.kedro_bridge.credentials import credential_secrets
from app.kedro_bridge.log_capture import RunLogCapture
from app.kedro_bridge.outputs import describe_free, describe_saved
from app.kedro_bridge.prerun_guard import PreRunGuard
from app.kedro_bridge.project import ProjectLocation, open_session
from app.kedro_bridge.runners import build_runner

Send = Callable[[reports.Report], None]


class RunCancelledError(Exception):
    """Raised at a node boundary of a run whose cancellation was requested."""


class RunReporter:
    """Kedro hooks that turn node events into reports. Thread-safe (ThreadRunner)."""

    def __init__(self, send: Send, on_node: Callable[[str | None], None]) -> None:
        self._send = send
        self._on_node = on_node
        self._run_id: str | None = None
        self._cancel = threading.Event()
        # Cancels that arrived before their run began (the listener thread can read
        # a cancel before the main thread has taken the run from its inbox).
        self._cancelled_early: set[str] = set()
        self._lock = threading.Lock()
        self._proceeded = threading.Condition(self._lock)
        self._may_proceed: set[str] = set()  # runs whose hand-over the service recorded
        self.catalog: Any = None  # this run's catalog, to describe what it saved
        self.saved: list[str] = []

    def begin(self, run_id: str) -> None:
        with self._lock:
            self._run_id = run_id
            self.catalog = None
            self.saved = []
            self._may_proceed &= {run_id}  # an early go for this run; none for older ones
            if run_id in self._cancelled_early:
                self._cancelled_early.discard(run_id)
                self._cancel.set()
            else:
                self._cancel.clear()

    def end(self) -> None:
        with self._lock:
            self._run_id = None

    def request_cancel(self, run_id: str) -> None:
        with self._lock:
            if run_id == self._run_id:
                self._cancel.set()
                self._proceeded.notify_all()
            else:
                self._cancelled_early.add(run_id)

    def proceed(self, run_id: str) -> None:
        """The service recorded that this worker took ``run_id``: its nodes may run."""
        with self._lock:
            self._may_proceed.add(run_id)
            self._proceeded.notify_all()

    @hook_impl(tryfirst=True)
    def before_pipeline_run(self) -> None:
        """Hold the run before its first node until the service has recorded that this
        worker took it (or it is cancelled): a service that dies before then must be
        right to find the attempt not started. The wait overlaps Kedro's loading of the
        configuration and catalog, which comes before this hook."""
        run_id = self._current()
        with self._lock:
            self._proceeded.wait_for(lambda: run_id in self._may_proceed or self._cancel.is_set())
            self._may_proceed.discard(run_id)
        if self._cancel.is_set():
            raise RunCancelledError("cancelled before its first node")

    @property
    def cancel_requested(self) -> bool:
        return self._cancel.is_set()

    @hook_impl
    def before_node_run(self, node: Any) -> None:
        run_id = self._current()
        if self._cancel.is_set():
            raise RunCancelledError(f"cancelled before node {node.name}")
        self._on_node(node.name)
        self._send(reports.NodeStarted(run_id, node.name, utcnow()))

    @hook_impl
    def after_catalog_created(self, catalog: Any) -> None:
        self.catalog = catalog

    # Kedro logs "Loading data from ..." before before_node_run fires and "Saving data
    # to ..." after after_node_run: the dataset hooks carry the node, so its loads and
    # saves are attributed to it (per thread: async loads run on a pool of their own).
    @hook_impl
    def before_dataset_loaded(self, node: Any) -> None:
        self._on_node(node.name)

    @hook_impl
    def after_dataset_loaded(self) -> None:
        self._on_node(None)

    @hook_impl
    def before_dataset_saved(self, node: Any) -> None:
        self._on_node(node.name)

    @hook_impl
    def after_dataset_saved(self, dataset_name: str) -> None:
        self._on_node(None)
        with self._lock:
            if dataset_name not in self.saved:
                self.saved.append(dataset_name)

    @hook_impl
    def after_node_run(self, node: Any) -> None:
        self._on_node(None)
        self._send(reports.NodeCompleted(self._current(), node.name, utcnow()))

    @hook_impl
    def on_node_error(self, error: Exception, node: Any) -> None:
        self._on_node(None)
        self._send(
            reports.NodeFailed(
                self._current(), node.name, utcnow(), type(error).__name__, redact(str(error))
            )
        )

    def _current(self) -> str:
        if self._run_id is None:
            raise RuntimeError("a Kedro hook fired outside a run")
        return self._run_id


class WorkerSession:
    """Owns this process's KedroServiceSession and executes runs on it, one at a time."""

    def __init__(
        self,
        location: ProjectLocation,
        send: Send,
        log_cap: int = 10_000,
        max_inline_bytes: int = 64 * 1024,
        data_root: Path | None = None,
        allowed_protocols: Iterable[str] = ("file",),
    ) -> None:
        self._session = open_session(location)
        self._send = send
        self._max_inline_bytes = max_inline_bytes
        self.logs = RunLogCapture(send, log_cap)
        self.reporter = RunReporter(send, self.logs.set_node)
        # KedroServiceSession has no public way to add a hook implementation;
        # its plugin manager is the one every run of this session uses.
        self._session._hook_manager.register(self.reporter)
        # The same data root and protocols as the API process's guard (wiring passes both).
        policy = catalog_guard.Policy.of_project(
            location.project_path, data_root, allowed_protocols
        )
        self._session._hook_manager.register(
            PreRunGuard(self._session, location.project_path, policy)
        )

    def known_secrets(self) -> set[str]:
        """The secrets of the project's credentials (see :func:`credential_secrets`)."""
        return credential_secrets(self._session)

    def execute(self, job: RunAssignment) -> reports.RunReport:
        """Run ``job`` to its end and return the terminal report. Never raises.

        The secrets of the run's params are masked in all it reports meanwhile."""
        with run_secrets(secrets_in(dict(job.spec.params))):
            return self._execute(job)

    def _execute(self, job: RunAssignment) -> reports.RunReport:
        self.reporter.begin(job.run_id)
        self.logs.begin(job.run_id)
        result: dict[str, Any] = {}
        try:
            result = self._session.run(**session_run_arguments(job))
        except RunCancelledError as cancelled:
            return reports.RunCancelled(job.run_id, utcnow(), str(cancelled))
        except Exception as error:
            if self.reporter.cancel_requested and _caused_by_cancel(error):
                return reports.RunCancelled(job.run_id, utcnow(), str(error))
            return reports.RunFailed(
                job.run_id, utcnow(), FailureReason.ERROR, type(error).__name__, redact(str(error))
            )
        finally:
            self._send_outputs(job, result)
            self.reporter.end()
            self.logs.set_node(None)
            self.logs.end()
        return reports.RunSucceeded(job.run_id, utcnow())

    def _send_outputs(self, job: RunAssignment, result: dict[str, Any]) -> None:
        try:
            saved = (
                describe_saved(self.reporter.catalog, list(self.reporter.saved), job.save_version)
                if self.reporter.catalog
                else []
            )
            free = describe_free(result, self._max_inline_bytes)
        except Exception as error:  # describing must never turn a run into a failure
            saved, free = [], [{"error": redact(f"{type(error).__name__}: {error}")}]
        self._send(reports.RunOutputs(job.run_id, tuple(saved), tuple(free)))

    def close(self) -> None:
        self._session.close()


def session_run_arguments(job: RunAssignment) -> dict[str, Any]:
    """What ``session.run`` receives for ``job``: every filter the spec declares, under
    its own name, and the run's identity, pipelines, runner and params."""
    spec = job.spec
    return {
        "run_id": job.save_version,
        "pipeline_names": list(spec.pipeline_names),
        "runner": build_runner(spec.runner, spec.is_async),
        "runtime_params": spec.params or None,
        **spec.kedro_filters(),
    }


def _caused_by_cancel(error: BaseException) -> bool:
    seen: BaseException | None = error
    while seen is not None:
        if isinstance(seen, RunCancelledError):
            return True
        seen = seen.__cause__ or seen.__context__
    return False

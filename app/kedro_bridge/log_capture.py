"""Capturing every log record emitted inside a run (Kedro's, the project's nodes', any
library's) in a worker process, and sending it to the service in batches.

One handler on the root logger of the worker; it captures only while a run is under
way, so logs of different runs never mix (a worker runs one run at a time). Each
record keeps its level, logger, node (per thread, so ThreadRunner nodes are told
apart), time and redacted message. Past the run's cap, records are counted, not kept.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import UTC, datetime

from app.domain import reports
from app.domain.redaction import redact

_BATCH = 100
_MAX_MESSAGE_CHARS = 8000
_SERVICE_LOGGERS = ("app.", "kedro_runs")


class RunLogCapture(logging.Handler):
    """Thread-safe (logging.Handler's own lock guards emit and flush)."""

    def __init__(self, send: Callable[[reports.Report], None], cap: int) -> None:
        super().__init__(level=logging.NOTSET)
        self.setFormatter(logging.Formatter("%(message)s"))
        self._send = send
        self._cap = cap
        self._run_id: str | None = None
        self._buffer: list[reports.LogLine] = []
        self._kept = 0
        self._dropped = 0
        self._node = threading.local()

    def begin(self, run_id: str) -> None:
        with self.lock:  # type: ignore[union-attr]
            self._run_id = run_id
            self._buffer = []
            self._kept = 0
            self._dropped = 0

    def end(self) -> None:
        """Send what is left of the run's records (before its terminal report)."""
        with self.lock:  # type: ignore[union-attr]
            self._flush()
            self._run_id = None

    def set_node(self, name: str | None) -> None:
        self._node.name = name

    def emit(self, record: logging.LogRecord) -> None:
        if self._run_id is None or record.name.startswith(_SERVICE_LOGGERS):
            return
        if self._kept >= self._cap:
            self._dropped += 1
            return
        self._kept += 1
        self._buffer.append(
            reports.LogLine(
                at=datetime.fromtimestamp(record.created, UTC),
                level=record.levelname,
                logger=record.name,
                node=getattr(self._node, "name", None),
                message=redact(self.format(record), _MAX_MESSAGE_CHARS),
            )
        )
        if len(self._buffer) >= _BATCH:
            self._flush()

    def _flush(self) -> None:
        if self._run_id is None or (not self._buffer and not self._dropped):
            return
        self._send(reports.RunLogs(self._run_id, tuple(self._buffer), self._dropped))
        self._buffer = []
        self._dropped = 0

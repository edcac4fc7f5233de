"""The worker-side reporter: cancellation reaches a run even if it arrives first."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from app.domain import reports
from app.kedro_bridge.execution import RunCancelledError, RunReporter


def test_a_cancel_that_arrives_before_its_run_begins_still_stops_it() -> None:
    sent: list[reports.Report] = []
    reporter = RunReporter(sent.append, lambda _node: None)
    reporter.request_cancel("run-1")  # read by the listener before the run began
    reporter.begin("run-1")
    with pytest.raises(RunCancelledError):
        reporter.before_node_run(SimpleNamespace(name="first"))
    reporter.end()
    assert sent == []


def test_a_cancel_for_another_run_does_not_stop_this_one() -> None:
    sent: list[reports.Report] = []
    reporter = RunReporter(sent.append, lambda _node: None)
    reporter.request_cancel("run-0")
    reporter.begin("run-1")
    reporter.before_node_run(SimpleNamespace(name="first"))
    assert [type(r).__name__ for r in sent] == ["NodeStarted"]

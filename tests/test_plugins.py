"""The service's own pluggy hooks: a failing plugin is logged and skipped."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from app.plugins.manager import create_plugin_manager
from app.plugins.markers import hook_impl


class Broken:
    @hook_impl
    def run_finished(self, run_id: str) -> None:
        raise RuntimeError(f"plugin bug on {run_id}")


class Recorder:
    def __init__(self) -> None:
        self.finished: list[tuple[str, str]] = []

    @hook_impl
    def run_finished(self, run_id: str, status: str) -> None:
        self.finished.append((run_id, status))


def test_a_failing_plugin_is_logged_and_the_others_still_run(
    caplog: pytest.LogCaptureFixture,
) -> None:
    recorder = Recorder()
    hooks = create_plugin_manager([recorder, Broken()], entry_points=False)
    at = datetime(2026, 1, 1, tzinfo=UTC)
    hooks.run_finished("r1", ["p"], "succeeded", at, at, None)
    assert recorder.finished == [("r1", "succeeded")]
    assert "plugin bug on r1" in caplog.text
    assert "failed in run_finished" in caplog.text

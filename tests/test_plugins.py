"""The service's own pluggy hooks: a failing plugin is logged and skipped."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

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


def test_plugins_are_loaded_from_the_kedro_runs_entry_point_group(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # An installed distribution, as pip would leave it: a module and its dist-info.
    (tmp_path / "demo_runs_plugin.py").write_text(
        "from app.plugins.markers import hook_impl\n"
        "class Plugin:\n"
        "    finished = []\n"
        "    @hook_impl\n"
        "    def run_finished(self, run_id):\n"
        "        self.finished.append(run_id)\n"
        "plugin = Plugin()\n"
    )
    dist = tmp_path / "demo_runs_plugin-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: demo-runs-plugin\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text("[kedro_runs]\ndemo = demo_runs_plugin:plugin\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    hooks = create_plugin_manager([], entry_points=True)
    at = datetime(2026, 1, 1, tzinfo=UTC)
    hooks.run_finished("r2", ["p"], "failed", None, at, {"reason": "error"})
    import demo_runs_plugin  # type: ignore[import-not-found]

    assert demo_runs_plugin.plugin.finished == ["r2"]

"""The hooks a kedro-runs plugin may implement. Each is called on the service's event
loop after the fact is durable; keep implementations quick (hand slow work, such as
network calls, to a thread). An implementation that raises is logged and skipped: it
never fails a run or a request."""

from __future__ import annotations

from datetime import datetime

from app.plugins.markers import hook_spec


class RunHookSpecs:
    @hook_spec
    def run_submitted(self, run_id: str, pipeline_names: list[str], at: datetime) -> None:
        """A run was accepted and stored as queued."""

    @hook_spec
    def run_started(self, run_id: str, pipeline_names: list[str], at: datetime) -> None:
        """A run was handed to a worker."""

    @hook_spec
    def run_finished(
        self,
        run_id: str,
        pipeline_names: list[str],
        status: str,
        started_at: datetime | None,
        finished_at: datetime,
        error: dict[str, str] | None,
    ) -> None:
        """A run ended: ``status`` is succeeded, failed or cancelled."""

    @hook_spec
    def event_recorded(self, run_id: str, event_type: str, at: datetime, node: str | None) -> None:
        """An event of a run was recorded (node events included)."""

"""A plugin manager of the service's own (one per service, as Kedro makes one per
session), and the RunHooks port implemented over it."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

import pluggy

from app.plugins.markers import PROJECT
from app.plugins.specs import RunHookSpecs

logger = logging.getLogger("kedro_runs.plugins")


def create_plugin_manager(plugins: list[object], *, entry_points: bool = True) -> PluginHooks:
    """A manager with ``plugins`` registered and, with ``entry_points``, every plugin
    installed under the ``kedro_runs`` entry point group."""
    manager = pluggy.PluginManager(PROJECT)
    manager.add_hookspecs(RunHookSpecs)
    for plugin in plugins:
        manager.register(plugin)
    if entry_points:
        manager.load_setuptools_entrypoints(PROJECT)
    return PluginHooks(manager)


class PluginHooks:
    """Calls every implementation of a hook on its own, so one failing plugin is logged
    and the others still run."""

    def __init__(self, manager: pluggy.PluginManager) -> None:
        self.manager = manager

    def _call(self, name: str, **kwargs: Any) -> None:
        caller = getattr(self.manager.hook, name)
        for implementation in caller.get_hookimpls():
            try:
                implementation.function(**{a: kwargs[a] for a in implementation.argnames})
            except Exception:
                logger.exception("plugin %s failed in %s", implementation.plugin_name, name)

    def run_submitted(self, run_id: str, pipeline_names: list[str], at: datetime) -> None:
        self._call("run_submitted", run_id=run_id, pipeline_names=pipeline_names, at=at)

    def run_started(self, run_id: str, pipeline_names: list[str], at: datetime) -> None:
        self._call("run_started", run_id=run_id, pipeline_names=pipeline_names, at=at)

    def run_finished(
        self,
        run_id: str,
        pipeline_names: list[str],
        status: str,
        started_at: datetime | None,
        finished_at: datetime,
        error: dict[str, str] | None,
    ) -> None:
        self._call(
            "run_finished",
            run_id=run_id,
            pipeline_names=pipeline_names,
            status=status,
            started_at=started_at,
            finished_at=finished_at,
            error=error,
        )

    def event_recorded(self, run_id: str, event_type: str, at: datetime, node: str | None) -> None:
        self._call("event_recorded", run_id=run_id, event_type=event_type, at=at, node=node)

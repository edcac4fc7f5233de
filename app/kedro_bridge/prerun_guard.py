"""The catalog guard's rules, checked again in the worker just before a run's first node.

The API process checks where a run's params move its datasets when the run is
submitted; a run may then wait in the queue, and a symlink created meanwhile under the
data root would be followed when the run writes. So the worker checks the run's own
catalog (as Kedro built it for this run) once more, in ``before_pipeline_run``, after
the catalog exists and before any node runs, and fails the run if a rule no longer
holds. A race between this check and the writes themselves remains (time of check,
time of use): a link swapped in during the run is not caught.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from kedro.framework.hooks import hook_impl

from app.kedro_bridge import catalog_guard
from app.kedro_bridge.resolved_catalog import ResolvedCatalog, guard_config


class LocationGuardError(Exception):
    """A run's params-driven dataset locations no longer pass the catalog guard."""


class PreRunGuard:
    """Kedro hooks that refuse to start a run whose params-driven datasets fail the
    guard now: every rule of ``catalog_guard`` (locations at any depth, typed mapping
    or not, and every other value), as the API process applied it. One per worker
    process; a worker runs one run at a time."""

    def __init__(self, session: Any, project_path: Path, policy: catalog_guard.Policy) -> None:
        from kedro.framework.project import pipelines

        default_config = guard_config(session._get_config_loader()["catalog"], project_path)
        self._resolve_default = ResolvedCatalog(default_config).resolved
        self._project_path = project_path
        self._policy = policy
        names = catalog_guard.project_dataset_names(default_config, pipelines.values())
        self._protected = catalog_guard.protected_locations(names, self._resolve_default)
        self._run_catalog: dict[str, Any] | None = None

    @hook_impl
    def after_catalog_created(self, conf_catalog: dict[str, Any]) -> None:
        self._run_catalog = conf_catalog

    @hook_impl
    def before_pipeline_run(self, run_params: dict[str, Any], pipeline: Any) -> None:
        """Raises LocationGuardError, which fails the run before its first node."""
        run_catalog, self._run_catalog = self._run_catalog, None
        if not run_params.get("runtime_params"):
            return  # without params, every dataset is where the project put it
        if run_catalog is None:
            raise LocationGuardError("The run's catalog was not seen; it cannot be checked.")
        errors = catalog_guard.params_driven_errors(
            pipeline.datasets(),
            # As the API process saw it: absolute paths, credentials as digests.
            ResolvedCatalog(guard_config(run_catalog, self._project_path)).resolved,
            self._resolve_default,
            self._policy,
            self._protected,
        )
        if errors:
            raise LocationGuardError(
                "The run's datasets no longer pass the checks made when it was submitted "
                "(a symlink changed while it waited?): " + "; ".join(e.msg for e in errors)
            )

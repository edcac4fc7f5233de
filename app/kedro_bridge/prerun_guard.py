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

from collections.abc import Callable
from pathlib import Path
from typing import Any

from kedro.framework.hooks import hook_impl

from app.kedro_bridge import catalog_guard
from app.kedro_bridge.resolved_catalog import RUNTIME_PATTERNS

# As the inspector resolves names no entry or pattern matches: in memory, nowhere on disk.

Resolve = Callable[[str], catalog_guard.ResolvedDataset]


class LocationGuardError(Exception):
    """A run's params-driven dataset locations no longer pass the catalog guard."""


def guard_view(config: dict[str, Any]) -> Resolve:
    """What the guard needs of each dataset of an (absolutised) catalog config, memoised;
    credentials as digests, as the inspector sees them."""
    from kedro.io.catalog_config_resolver import CatalogConfigResolver

    hidden = {
        name: catalog_guard.hide_credentials(entry) if isinstance(entry, dict) else entry
        for name, entry in config.items()
    }
    resolver = CatalogConfigResolver(hidden, default_runtime_patterns=RUNTIME_PATTERNS)
    resolved: dict[str, catalog_guard.ResolvedDataset] = {}

    def resolve(name: str) -> catalog_guard.ResolvedDataset:
        if name not in resolved:
            if name == "parameters" or name.startswith("params:"):
                resolved[name] = catalog_guard.ResolvedDataset((), ())
            else:
                resolved[name] = catalog_guard.ResolvedDataset.of(resolver.resolve_pattern(name))
        return resolved[name]

    return resolve


def absolute_catalog(loader: Any, project_path: Path) -> dict[str, Any]:
    """The catalog config ``loader`` resolves, with local paths made absolute as Kedro's
    context does before it builds a catalog."""
    from kedro.framework.context.context import _convert_paths_to_absolute_posix

    return dict(_convert_paths_to_absolute_posix(project_path, dict(loader["catalog"])))


class PreRunGuard:
    """Kedro hooks that refuse to start a run whose params-driven datasets fail the
    guard now: every rule of ``catalog_guard`` (locations at any depth, typed mapping
    or not, and every other value), as the API process applied it. One per worker
    process; a worker runs one run at a time."""

    def __init__(self, session: Any, project_path: Path, policy: catalog_guard.Policy) -> None:
        from kedro.framework.project import pipelines

        default_config = absolute_catalog(session._get_config_loader(), project_path)
        self._resolve_default = guard_view(default_config)
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
            guard_view(run_catalog),
            self._resolve_default,
            self._policy,
            self._protected,
        )
        if errors:
            raise LocationGuardError(
                "The run's datasets no longer pass the checks made when it was submitted "
                "(a symlink changed while it waited?): " + "; ".join(e.msg for e in errors)
            )

"""What a run with ``only_missing_outputs`` would execute, decided by Kedro's runner.

Kedro 1.7 decides it in ``AbstractRunner._filter_pipeline_for_missing_outputs``:
walking the nodes backwards, a node runs when it has no outputs, when one of its
persisted outputs does not exist, or when a node that runs needs one of its
outputs that is in memory (or missing). The rule is not public API, but a copy of
it would let plan and run drift apart, so the plan asks the runner the request
names, with a catalog built as a run's is: the project's ``DATA_CATALOG_CLASS``
from the catalog resolved with the request's params, and its load versions.

Two differences keep the API process read-only and free of secrets: credentials
are the inspector's digests, and no ``after_catalog_created`` hook runs. So an
output whose existence cannot be checked here (its dataset needs the real
credentials, or its check fails) counts as missing: the plan lists its node,
which may run. Existence is as of the plan; a run decides again when it starts.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from app.domain.runs import RunSpec
from app.kedro_bridge.runners import build_runner

if TYPE_CHECKING:
    from kedro.pipeline import Pipeline


def pipeline_to_run(pipeline: Pipeline, catalog_config: dict[str, Any], spec: RunSpec) -> Pipeline:
    """The nodes of ``pipeline`` (the request's selection) that a run of ``spec`` with
    ``only_missing_outputs`` would execute now, as Kedro's runner filters them.
    ``catalog_config`` is the resolved catalog (absolute paths, credentials hidden)."""
    from kedro.framework.project import settings

    catalog = settings.DATA_CATALOG_CLASS.from_config(
        catalog_config, load_versions=dict(spec.load_versions) or None
    )
    runner = build_runner(spec.runner, spec.is_async)
    # Kedro's own rule (see the module docstring for why the private method).
    filtered: Pipeline = runner._filter_pipeline_for_missing_outputs(
        pipeline, _ExistenceCheck(catalog)
    )
    return filtered


class _ExistenceCheck:
    """The catalog as the missing-outputs rule reads it (membership, datasets,
    existence), except that a dataset that cannot be built or checked in this
    process counts as existing nowhere: its node is planned."""

    def __init__(self, catalog: Any) -> None:
        self._catalog = catalog

    def __contains__(self, name: str) -> bool:
        return name in self._catalog

    def get(self, name: str) -> Any:
        try:
            return self._catalog.get(name)
        except Exception:  # e.g. a dataset whose real credentials stay in the workers
            return None

    def exists(self, name: str) -> bool:
        try:
            return bool(self._catalog.exists(name))
        except Exception:
            return False

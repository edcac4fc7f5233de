"""KedroInspector: validates run requests against the project and plans them.

Runs in the API process, which never executes a node. Resolving configuration
with a caller's params uses Kedro's process-global OmegaConf resolvers, so every
call into Kedro here is serialised by one lock. When no file the config loader reads
for the catalog or globals mentions ``runtime_params``, the catalog cannot depend on
params and is resolved once at start-up; otherwise it is resolved per request. The
same holds for credentials (``config_reach``).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from app.domain.discovery import DatasetInfo, PipelineDetail, PipelineSummary, PlanDetail
from app.domain.redaction import redact
from app.domain.runs import RunPlan, RunSpec
from app.errors import FieldError, InvalidRunRequest, PipelineNotFound, ServiceUnavailable
from app.kedro_bridge import catalog_guard, config_reach, discovery, missing_outputs, selection
from app.kedro_bridge.project import ProjectLocation, open_project, project_commit
from app.kedro_bridge.resolved_catalog import ResolvedCatalog, guard_config, run_plan
from app.kedro_bridge.runners import RUNNERS
from app.kedro_bridge.suggestions import Suggestions, close_matches

if TYPE_CHECKING:
    from kedro.pipeline import Pipeline

logger = logging.getLogger("kedro_runs.inspector")


class KedroInspector:
    """The project as the API process sees it. Thread-safe; calls are serialised."""

    def __init__(
        self,
        location: ProjectLocation,
        data_root: Path | None = None,
        allowed_protocols: Iterable[str] = ("file",),
    ) -> None:
        from kedro import __version__ as kedro_version
        from kedro.framework.project import pipelines

        self._lock = threading.Lock()
        self._location = location
        self._policy = catalog_guard.Policy.of_project(
            location.project_path, data_root, allowed_protocols
        )
        self.session, self._metadata = open_project(location)
        self._pipelines: dict[str, Pipeline] = dict(pipelines.items())
        self.kedro_version: str = kedro_version
        self.project_commit = project_commit(location.project_path)
        loader = self.session._get_config_loader()
        self.env: str | None = loader.env or loader.default_run_env or None
        reach = config_reach.params_reach(loader)
        self._params_free_catalog = not {"catalog", "globals"} & reach
        self._params_free_credentials = "credentials" not in reach
        # The catalog and parameters as the project defines them, with no caller params.
        self._default_catalog_config = self._catalog_config(None)
        self._default_catalog = ResolvedCatalog(self._default_catalog_config)
        self._default_credentials = (
            None
            if self._params_free_credentials
            else config_reach.resolve_credential_digests(loader)
        )
        self._protected = catalog_guard.protected_locations(
            catalog_guard.project_dataset_names(
                self._default_catalog_config, self._pipelines.values()
            ),
            self._default_catalog.resolved,
        )
        self._parameters: dict[str, Any] = dict(loader["parameters"])

    def close(self) -> None:
        self.session.close()

    @property
    def pipeline_names(self) -> list[str]:
        return sorted(self._pipelines)

    def plan(self, spec: RunSpec) -> RunPlan:
        """Validate ``spec`` and return the nodes it will run and the files it touches.

        Raises InvalidRunRequest with one FieldError per problem found.
        """
        with self._lock:
            return self._plan(spec)

    def list_pipelines(self) -> list[PipelineSummary]:
        return [discovery.summarise(name, self._pipelines[name]) for name in self.pipeline_names]

    def pipeline(self, name: str) -> PipelineDetail:
        """Raises PipelineNotFound, with close matches."""
        if name not in self._pipelines:
            raise PipelineNotFound(
                f"No pipeline named {name!r}{selection.hint(close_matches(name, self._pipelines))}"
            )
        return discovery.detail(name, self._pipelines[name], self._parameters)

    def list_datasets(self) -> list[DatasetInfo]:
        return discovery.datasets(self._default_catalog_config)

    def plan_detail(self, spec: RunSpec) -> tuple[RunPlan, PlanDetail]:
        """Like ``plan``, plus what the run would run, need, write and read now: with
        ``only_missing_outputs``, only the nodes Kedro's runner would not skip. The
        ``RunPlan`` (what the run may touch) is the whole selection either way."""
        with self._lock:
            filtered, catalog = self._select(spec)
            to_run = filtered
            if spec.only_missing_outputs:
                to_run = missing_outputs.pipeline_to_run(filtered, catalog.config, spec)
            return run_plan(filtered, catalog), discovery.plan_detail(to_run, catalog)

    def snapshot(self, params: dict[str, Any] | None) -> Any:
        """Kedro's own project snapshot (``kedro.inspection``), resolved with ``params``."""
        from kedro.inspection import get_project_snapshot

        with self._lock:
            return get_project_snapshot(
                project_path=self._location.project_path,
                env=self._location.env,
                conf_source=str(self._location.conf_source) if self._location.conf_source else None,
                metadata=self._metadata,
                runtime_params=params,
            )

    def _plan(self, spec: RunSpec) -> RunPlan:
        return run_plan(*self._select(spec))

    def _select(self, spec: RunSpec) -> tuple[Pipeline, ResolvedCatalog]:
        """The filtered pipeline ``spec`` selects and the catalog resolved with its params.
        Raises InvalidRunRequest."""
        # Hints for the first few unknown names of the whole request, none for the rest.
        suggestions = Suggestions()
        combined = self._combined_pipeline(spec, suggestions)
        errors = selection.unknown_names(spec, combined, suggestions)
        if spec.runner not in RUNNERS:
            errors.append(
                FieldError(
                    ("body", "runner"),
                    f"unknown runner {spec.runner!r}; allowed: {', '.join(sorted(RUNNERS))}",
                )
            )
        catalog = self._catalog_for(spec)
        errors += selection.load_version_errors(spec, combined, catalog)
        if catalog is not self._default_catalog:
            errors += catalog_guard.params_driven_errors(
                combined.datasets(),
                catalog.resolved,
                self._default_catalog.resolved,
                self._policy,
                self._protected,
            )
        if spec.params and not self._params_free_credentials:
            moved = config_reach.resolve_credential_digests(
                self.session._get_config_loader(spec.params)
            )
            errors += config_reach.credentials_errors(moved, self._default_credentials)
        if errors:
            raise InvalidRunRequest("The run request does not fit this project.", errors)
        return selection.filter_pipeline(combined, spec), catalog

    def _combined_pipeline(self, spec: RunSpec, suggestions: Suggestions) -> Pipeline:
        from kedro.pipeline import Pipeline

        combined = Pipeline([])
        errors = []
        for index, name in enumerate(spec.pipeline_names):
            if name in self._pipelines:
                combined += self._pipelines[name]
                continue
            matches = suggestions.for_name(name, self._pipelines.keys())
            hint = f" Did you mean one of these instead? {', '.join(matches)}" if matches else ""
            errors.append(
                FieldError(
                    ("body", "pipeline_names", index),
                    f"no pipeline named {name!r}.{hint}",
                    "unknown_pipeline",
                )
            )
        if errors:
            raise InvalidRunRequest("Unknown pipeline.", errors)
        return combined

    def _catalog_for(self, spec: RunSpec) -> ResolvedCatalog:
        if self._params_free_catalog or not spec.params:
            return self._default_catalog
        return ResolvedCatalog(self._catalog_config(spec.params))

    def _catalog_config(self, params: dict[str, Any] | None) -> dict[str, Any]:
        try:
            config = self.session._get_config_loader(params or None)["catalog"]
        except Exception as error:
            if params and not _is_environment_failure(error) and self._resolves_without_params():
                raise InvalidRunRequest(
                    "The project's catalog cannot be resolved with these params.",
                    [FieldError(("body", "params"), redact(str(error)), "catalog_resolution")],
                ) from error
            # Not the caller's doing (files unreadable or gone, no descriptors left):
            # a 503 to retry, with the cause, and its server paths, in our log only.
            logger.error("the project's catalog cannot be resolved", exc_info=error)
            raise ServiceUnavailable(
                "The service cannot read the project's configuration now; retry later.",
                retry_after_seconds=5,
            ) from error
        # Only locations and behaviour matter here: credentials stay out of this process,
        # as digests that still show whether params changed them.
        return guard_config(config, self._location.project_path)

    def _resolves_without_params(self) -> bool:
        """Whether the catalog resolves without the caller's params: if it does not
        either, the failure is the environment's, not the request's."""
        try:
            self.session._get_config_loader(None)["catalog"]
        except Exception:
            return False
        return True


def _is_environment_failure(error: BaseException) -> bool:
    """An OS error (anywhere in the chain of causes) or configuration files that are
    not there: conditions of the server, which no caller params can bring about."""
    from kedro.config import MissingConfigException

    seen: BaseException | None = error
    while seen is not None:
        if isinstance(seen, OSError | MissingConfigException):
            return True
        seen = seen.__cause__ or seen.__context__
    return False

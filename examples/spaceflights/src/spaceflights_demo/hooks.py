"""Project hooks for the spaceflights demo."""

from __future__ import annotations

import logging
from typing import Any

from kedro.framework.hooks import hook_impl
from kedro.pipeline import Pipeline

logger = logging.getLogger(__name__)


class RunLoggingHooks:
    """Stateless hooks that log the end of every successful pipeline run.

    The class keeps no per-run state, so a single instance can safely be shared
    by concurrent runs of a long-lived session.
    """

    @hook_impl
    def after_pipeline_run(
        self, run_params: dict[str, Any], pipeline: Pipeline
    ) -> None:
        """Log the run id, requested pipelines and node count once a run finishes."""
        logger.info(
            "spaceflights_demo: run %s finished (pipelines=%s, nodes=%d)",
            run_params.get("run_id"),
            run_params.get("pipeline_names") or ["__default__"],
            len(pipeline.nodes),
        )

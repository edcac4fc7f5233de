"""Project pipelines, registered explicitly so the set of names is fixed."""

from __future__ import annotations

from kedro.pipeline import Pipeline

from spaceflights_demo.pipelines import data_processing, data_science, reporting, slow


def register_pipelines() -> dict[str, Pipeline]:
    """Register the project's pipelines.

    ``__default__`` covers the full spaceflights flow; ``slow`` is deliberately
    left out of it because it only exists to try progress reporting and
    cancellation.

    Returns:
        A mapping from pipeline names to ``Pipeline`` objects.
    """
    processing = data_processing.create_pipeline()
    science = data_science.create_pipeline()
    report = reporting.create_pipeline()
    return {
        "__default__": processing + science + report,
        "data_processing": processing,
        "data_science": science,
        "reporting": report,
        "slow": slow.create_pipeline(),
    }

"""Definition of the namespaced ``reporting`` pipeline.

The nodes are written against un-namespaced names (``grouped_stats``,
``summary``, ``params:group_column``...) and wrapped with
``namespace="reporting"``, so Kedro turns them into ``reporting.summary``,
``params:reporting.top_n`` and so on. ``model_input_table`` is declared as an
input so that it keeps its global name.
"""

from __future__ import annotations

from kedro.pipeline import Pipeline, node, pipeline

from .nodes import aggregate_by_group, rank_groups

NAMESPACE = "reporting"


def _template() -> Pipeline:
    """The reusable, un-namespaced summary pipeline."""
    return Pipeline(
        [
            node(
                func=aggregate_by_group,
                inputs=["model_input_table", "params:group_column"],
                outputs="grouped_stats",
                name="aggregate_by_group_node",
            ),
            node(
                func=rank_groups,
                inputs=["grouped_stats", "params:top_n"],
                outputs="summary",
                name="rank_groups_node",
            ),
        ]
    )


def create_pipeline(**kwargs: object) -> Pipeline:
    """Instantiate the summary template under the ``reporting`` namespace."""
    return pipeline(
        _template(),
        inputs={"model_input_table"},
        namespace=NAMESPACE,
        tags=["reporting"],
    )

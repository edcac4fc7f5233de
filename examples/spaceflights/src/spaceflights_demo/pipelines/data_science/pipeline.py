"""Definition of the ``data_science`` pipeline."""

from __future__ import annotations

from kedro.pipeline import Pipeline, node

from .nodes import evaluate_model, split_data, train_model


def create_pipeline(**kwargs: object) -> Pipeline:
    """Split ``model_input_table``, fit ``regressor`` and write ``metrics``."""
    return Pipeline(
        [
            node(
                func=split_data,
                inputs=["model_input_table", "params:model_options"],
                outputs=["train_set", "test_set"],
                name="split_data_node",
                tags=["training"],
            ),
            node(
                func=train_model,
                inputs=["train_set", "params:model_options"],
                outputs="regressor",
                name="train_model_node",
                tags=["training"],
            ),
            node(
                func=evaluate_model,
                inputs=["regressor", "test_set"],
                outputs="metrics",
                name="evaluate_model_node",
                tags=["evaluation"],
            ),
        ]
    )

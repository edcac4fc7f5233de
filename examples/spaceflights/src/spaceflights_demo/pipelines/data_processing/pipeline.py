"""Definition of the ``data_processing`` pipeline."""

from __future__ import annotations

from kedro.pipeline import Pipeline, node

from .nodes import create_model_input_table, preprocess_companies, preprocess_shuttles


def create_pipeline(**kwargs: object) -> Pipeline:
    """Clean ``companies`` and ``shuttles`` and build ``model_input_table``."""
    return Pipeline(
        [
            node(
                func=preprocess_companies,
                inputs="companies",
                outputs="preprocessed_companies",
                name="preprocess_companies_node",
                tags=["preprocessing"],
            ),
            node(
                func=preprocess_shuttles,
                inputs="shuttles",
                outputs="preprocessed_shuttles",
                name="preprocess_shuttles_node",
                tags=["preprocessing"],
            ),
            node(
                func=create_model_input_table,
                inputs=["preprocessed_shuttles", "preprocessed_companies", "reviews"],
                outputs="model_input_table",
                name="create_model_input_table_node",
                tags=["preprocessing"],
            ),
        ]
    )

"""Nodes that summarise ``model_input_table`` for reporting."""

from __future__ import annotations

import pandas as pd


def aggregate_by_group(data: pd.DataFrame, group_column: str) -> pd.DataFrame:
    """Compute per-group shuttle counts, prices, capacity and review scores.

    Args:
        data: ``model_input_table``.
        group_column: Column to group by, e.g. ``shuttle_type``.

    Returns:
        One row per group value with ``n_shuttles``, ``mean_price``,
        ``median_price``, ``mean_passenger_capacity`` and ``mean_review_score``.
    """
    if group_column not in data.columns:
        raise ValueError(f"Cannot group by unknown column {group_column!r}")
    grouped = data.groupby(group_column, sort=True).agg(
        n_shuttles=("shuttle_id", "count"),
        mean_price=("price", "mean"),
        median_price=("price", "median"),
        mean_passenger_capacity=("passenger_capacity", "mean"),
        mean_review_score=("review_scores_rating", "mean"),
    )
    return grouped.round(2).reset_index()


def rank_groups(grouped: pd.DataFrame, top_n: int) -> pd.DataFrame:
    """Keep the ``top_n`` most expensive groups and number them from 1.

    Ties on ``mean_price`` are broken by the group value so the order is stable.

    Args:
        grouped: Output of ``aggregate_by_group``.
        top_n: How many groups to keep (must be positive).

    Returns:
        The summary table with a leading ``rank`` column.
    """
    if int(top_n) < 1:
        raise ValueError(f"top_n must be a positive integer, got {top_n}")
    group_column = grouped.columns[0]
    ranked = grouped.sort_values(
        ["mean_price", group_column], ascending=[False, True]
    ).head(int(top_n))
    ranked.insert(0, "rank", range(1, len(ranked) + 1))
    return ranked.reset_index(drop=True)

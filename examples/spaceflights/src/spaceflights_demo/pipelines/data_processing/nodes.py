"""Nodes that clean the raw spaceflights tables and join them together."""

from __future__ import annotations

import pandas as pd


def _to_bool(column: pd.Series) -> pd.Series:
    """Turn a ``"t"``/``"f"`` flag column into booleans."""
    return column.astype(str).str.strip().str.lower() == "t"


def _percent_to_float(column: pd.Series) -> pd.Series:
    """Turn strings such as ``"87%"`` into fractions such as ``0.87``."""
    return pd.to_numeric(column.astype("string").str.rstrip("%"), errors="coerce") / 100


def _money_to_float(column: pd.Series) -> pd.Series:
    """Turn strings such as ``"$1,325.0"`` into floats such as ``1325.0``."""
    cleaned = column.astype(str).str.replace(r"[$,]", "", regex=True)
    return pd.to_numeric(cleaned, errors="coerce")


def preprocess_companies(companies: pd.DataFrame) -> pd.DataFrame:
    """Parse the company rating as a fraction and the IATA flag as a boolean.

    Args:
        companies: Raw ``companies`` table.

    Returns:
        A copy of the table with ``company_rating`` (float in [0, 1]) and
        ``iata_approved`` (bool) converted.
    """
    result = companies.copy()
    result["company_rating"] = _percent_to_float(result["company_rating"])
    result["iata_approved"] = _to_bool(result["iata_approved"])
    return result


def preprocess_shuttles(shuttles: pd.DataFrame) -> pd.DataFrame:
    """Parse the shuttle check flags as booleans and the price as a float.

    Args:
        shuttles: Raw ``shuttles`` table.

    Returns:
        A copy of the table with ``d_check_complete``,
        ``moon_clearance_complete`` (bool) and ``price`` (float) converted.
    """
    result = shuttles.copy()
    result["d_check_complete"] = _to_bool(result["d_check_complete"])
    result["moon_clearance_complete"] = _to_bool(result["moon_clearance_complete"])
    result["price"] = _money_to_float(result["price"])
    return result


def create_model_input_table(
    shuttles: pd.DataFrame, companies: pd.DataFrame, reviews: pd.DataFrame
) -> pd.DataFrame:
    """Join shuttles with their reviews and operating company into one table.

    Shuttles without reviews, and rows with any missing value (for example a
    company without a rating), are dropped. Rows are sorted by shuttle id so the
    output is identical from run to run.

    Args:
        shuttles: Preprocessed shuttles.
        companies: Preprocessed companies.
        reviews: Raw reviews, one row per shuttle.

    Returns:
        One row per reviewed shuttle, with shuttle, review and company columns.
    """
    with_reviews = shuttles.merge(reviews, left_on="id", right_on="shuttle_id")
    with_reviews = with_reviews.drop(columns="id")
    companies_renamed = companies.rename(columns={"id": "company_id"})
    table = with_reviews.merge(companies_renamed, on="company_id")
    table = table.dropna()
    return table.sort_values("shuttle_id").reset_index(drop=True)

"""Nodes that split the model input, fit a linear price model and score it.

The "model" is an ordinary least-squares fit computed with numpy, so the demo
needs nothing beyond pandas and numpy.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import pandas as pd

logger = logging.getLogger(__name__)

TARGET = "price"


def split_data(
    data: pd.DataFrame, options: dict[str, Any]
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Shuffle the rows with a fixed seed and split them into train and test sets.

    Args:
        data: ``model_input_table``.
        options: ``model_options`` parameters: ``features`` (list of column
            names), ``test_size`` (fraction in (0, 1)) and ``random_state`` (int).

    Returns:
        The train and test sets, each holding the feature columns and the
        ``price`` target.
    """
    features = list(options["features"])
    test_size = float(options["test_size"])
    if not 0.0 < test_size < 1.0:
        raise ValueError(f"model_options.test_size must be in (0, 1), got {test_size}")
    missing = sorted(set(features) - set(data.columns))
    if missing:
        raise ValueError(f"Unknown columns in model_options.features: {missing}")

    subset = data[[*features, TARGET]]
    order = np.random.default_rng(int(options["random_state"])).permutation(len(subset))
    n_test = max(1, round(len(subset) * test_size))
    if n_test >= len(subset):
        raise ValueError(f"test_size {test_size} leaves no rows to train on")
    test = subset.iloc[order[:n_test]].reset_index(drop=True)
    train = subset.iloc[order[n_test:]].reset_index(drop=True)
    return train, test


def _design_matrix(frame: pd.DataFrame, features: list[str]) -> np.ndarray:
    """Return the feature columns as floats with a leading column of ones."""
    values = frame[features].astype(float).to_numpy()
    return np.column_stack([np.ones(len(values)), values])


def train_model(train: pd.DataFrame, options: dict[str, Any]) -> dict[str, Any]:
    """Fit price as a linear function of the features by least squares.

    Args:
        train: Train set produced by ``split_data``.
        options: ``model_options`` parameters (only ``features`` is used).

    Returns:
        A plain dict model: ``features``, ``intercept`` and per-feature
        ``coefficients``.
    """
    features = list(options["features"])
    design = _design_matrix(train, features)
    target = train[TARGET].astype(float).to_numpy()
    solution, *_ = np.linalg.lstsq(design, target, rcond=None)
    return {
        "features": features,
        "intercept": float(solution[0]),
        "coefficients": {name: float(c) for name, c in zip(features, solution[1:])},
    }


def predict(model: dict[str, Any], frame: pd.DataFrame) -> np.ndarray:
    """Predict prices for ``frame`` with a model returned by ``train_model``."""
    features = model["features"]
    coefficients = [model["coefficients"][name] for name in features]
    weights = np.array([model["intercept"], *coefficients])
    return _design_matrix(frame, features) @ weights


def evaluate_model(model: dict[str, Any], test: pd.DataFrame) -> dict[str, float | int]:
    """Score the model on the test set.

    Args:
        model: Model returned by ``train_model``.
        test: Test set produced by ``split_data``.

    Returns:
        ``r2_score``, ``mean_absolute_error``, ``max_error`` and ``n_test_rows``.
    """
    actual = test[TARGET].astype(float).to_numpy()
    errors = actual - predict(model, test)
    total = float(((actual - actual.mean()) ** 2).sum())
    r2 = 1.0 - float((errors**2).sum()) / total if total > 0 else 0.0
    metrics = {
        "r2_score": round(r2, 6),
        "mean_absolute_error": round(float(np.abs(errors).mean()), 6),
        "max_error": round(float(np.abs(errors).max()), 6),
        "n_test_rows": len(test),
    }
    logger.info("Model has an R^2 of %.3f on %d test rows", r2, len(test))
    return metrics

"""Spaceflights demo: a small Kedro project used to exercise kedro-runs."""

__version__ = "0.1.0"

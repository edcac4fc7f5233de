"""Pipelines of the spaceflights demo project."""

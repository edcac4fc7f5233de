"""kedro-runs: an HTTP job service that runs the pipelines of a Kedro project."""

__version__ = "0.1.0"

"""Kedro's own HTTP server models (``kedro.server.models``), re-exported so the API
layer can serve Kedro's exact request and response schemas without importing Kedro."""

from __future__ import annotations

from typing import Any

from kedro.server.models import (
    ErrorDetail,
    HealthResponse,
    RunFailure,
    RunResponse,
    RunSuccess,
    SnapshotFailure,
    SnapshotResponse,
    SnapshotSuccess,
)
from kedro.server.models import RunRequest as KedroRunRequest
from pydantic import ConfigDict, Field, field_validator

from app.domain.limits import validated_params

__all__ = [
    "ErrorDetail",
    "HealthResponse",
    "RunFailure",
    "RunRequest",
    "RunResponse",
    "RunSuccess",
    "SnapshotFailure",
    "SnapshotResponse",
    "SnapshotSuccess",
    "parse_snapshot_params",
]


class RunRequest(KedroRunRequest):
    """Kedro's RunRequest, with the service's limits on ``params`` (same schema), and
    strict: a value of the wrong type is a 422, never coerced (Kedro's own model reads
    ``0`` as ``false``, which its documented schema does not allow)."""

    model_config = ConfigDict(extra="forbid", strict=True)

    # Kedro's field, described as this service treats it (Kedro's says "any importable
    # subclass", which is exactly what the service never does).
    runner: str | None = Field(
        default=None,
        description="Runner to use: `SequentialRunner` or `ThreadRunner`, by name or full "
        "name (`kedro.runner.ThreadRunner`). Any other is a run failure: an allowlist, "
        "nothing is imported.",
    )

    @field_validator("params")
    @classmethod
    def _bounded_params(cls, params: dict[str, Any] | None) -> dict[str, Any] | None:
        return validated_params(params)


def parse_snapshot_params(value: str) -> dict[str, Any]:
    """Kedro's ``kedro run --params`` syntax (``a=1,b.c=x``), parsed as Kedro's server
    parses it, then held to the service's limits. Raises ValueError."""
    from kedro.server.http_server import _parse_snapshot_params

    params: dict[str, Any] = _parse_snapshot_params(value)
    validated_params(params)
    return params

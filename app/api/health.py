"""Liveness and readiness (open to all, for probes), and metrics (admin keys only: they
count every key's runs)."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST

from app.api.auth import requires_admin
from app.api.deps import RunServiceDep
from app.api.problems import problem_responses
from app.errors import ServiceUnavailable

router = APIRouter(tags=["health"])


@router.get("/healthz", operation_id="getLiveness", summary="The process is alive")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get(
    "/readyz",
    operation_id="getReadiness",
    summary="The service can run pipelines",
    responses=problem_responses(503),
)
async def readyz(request: Request, service: RunServiceDep) -> dict[str, object]:
    """Ready when the project is loaded and at least one worker process is ready (in
    cluster mode: the database answers and a live replica has a ready worker); not ready
    from the moment shutdown begins."""
    if request.app.state.shutting_down() or not service.accepting:
        raise ServiceUnavailable("The service is shutting down.", retry_after_seconds=5)
    workers = await service.workers_available()
    if workers == 0:
        raise ServiceUnavailable("No worker process is ready yet.", retry_after_seconds=2)
    return {"status": "ready", "workers_ready": workers, "queued": service.queue_depth}


@router.get(
    "/metrics",
    operation_id="getMetrics",
    summary="Prometheus metrics",
    dependencies=[requires_admin],
    response_class=Response,
    responses={
        200: {
            "content": {CONTENT_TYPE_LATEST: {"schema": {"type": "string"}}},
            "description": "Prometheus text exposition format.",
        },
        **problem_responses(403),
    },
)
async def metrics(request: Request) -> Response:
    """Runs submitted and finished (by pipeline and status), run and node durations,
    queue depth, busy and idle workers, runs waiting on conflicts, HTTP requests."""
    return Response(request.app.state.metrics.render(), media_type=CONTENT_TYPE_LATEST)

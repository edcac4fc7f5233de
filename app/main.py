"""create_app(settings) -> FastAPI: routers, error handlers, lifespan. Nothing else."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.openapi.utils import get_openapi
from fastapi.responses import HTMLResponse, JSONResponse

from app import __version__
from app.api import discovery, health, kedro_compat, runs, streams
from app.api.auth import KeyRing, drop_key_requirements, requires_key
from app.api.body_limit import BodyLimitMiddleware
from app.api.host_check import ANY_HOST, HostCheckMiddleware
from app.api.problems import add_problem_schema, install_problem_handlers
from app.api.request_id import RequestIdMiddleware
from app.plugins.metrics import HttpMetricsMiddleware, MetricsPlugin
from app.settings import Settings


def create_app(settings: Settings) -> FastAPI:
    """The service as an ASGI app. Opening the project, the store and the worker pool
    happens in the lifespan, not here."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        from app.wiring import open_run_service

        async with AsyncExitStack() as stack:
            service = await stack.enter_async_context(open_run_service(settings, [metrics]))
            app.state.run_service = service
            metrics.observe_gauges(
                {
                    "kedro_runs_queue_depth": ("Runs queued.", lambda: service.queue_depth),
                    "kedro_runs_workers_busy": (
                        "Workers running a run.",
                        lambda: service.busy_workers,
                    ),
                    "kedro_runs_workers_idle": (
                        "Workers ready for a run.",
                        lambda: service.idle_workers,
                    ),
                    "kedro_runs_waiting_on_conflicts": (
                        "Queued runs waiting for a run that touches the same files.",
                        lambda: service.waiting_on_conflicts,
                    ),
                }
            )
            yield

    app = FastAPI(
        title="kedro-runs",
        version=__version__,
        description="Run the pipelines of a Kedro project over HTTP: submit, watch, cancel.",
        lifespan=lifespan,
        # Served below, behind the API key like every other endpoint.
        openapi_url=None,
        docs_url=None,
        redoc_url=None,
    )
    app.state.key_ring = KeyRing(settings.api_keys)
    metrics = MetricsPlugin()
    app.state.metrics = metrics
    if not settings.api_keys and ANY_HOST not in settings.allowed_hosts:
        # Innermost: size limits still answer first, and the refusal is counted in the
        # metrics and carries a request id like any other answer.
        app.add_middleware(HostCheckMiddleware, allowed_hosts=settings.allowed_hosts)
    app.add_middleware(
        BodyLimitMiddleware,
        max_bytes=settings.max_body_bytes,
        timeout_seconds=settings.body_timeout_seconds,
    )
    app.add_middleware(HttpMetricsMiddleware, metrics=metrics)
    app.add_middleware(RequestIdMiddleware)
    if settings.cors_origins:
        # Outermost, so a preflight is answered before anything asks for a key. Never
        # with credentials: API keys travel in a header, which needs no cookie mode.
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "POST"],
            allow_headers=["Authorization", "Content-Type", "Idempotency-Key", "Last-Event-ID"],
            expose_headers=["Location", "Retry-After", "Idempotent-Replayed", "X-Request-ID"],
        )
    app.state.stream_limits = streams.StreamLimits(
        settings.sse_heartbeat_seconds, settings.sse_max_seconds
    )
    # Replaced by the server that runs the app (see __main__): streams end when it stops.
    app.state.shutting_down = lambda: False
    install_problem_handlers(app)
    keyed = (runs.router, streams.router, discovery.router, kedro_compat.router)
    for router in keyed:
        app.include_router(router, dependencies=[requires_key])
    # Probes are open: /healthz, /readyz and Kedro's /health; /metrics is not.
    app.include_router(health.router)
    app.include_router(kedro_compat.probes)

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(
                title=app.title, version=app.version, description=app.description, routes=app.routes
            )
            if not app.state.key_ring.enabled:
                drop_key_requirements(schema)  # the document describes this deployment
            # One schema every problem response references; Kedro's 422 where it is Kedro's.
            add_problem_schema(schema, own_422=kedro_compat.KEDRO_422_OPERATIONS)
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]

    @app.get("/openapi.json", include_in_schema=False, dependencies=[requires_key])
    async def openapi_document() -> JSONResponse:
        return JSONResponse(app.openapi())

    if settings.docs_enabled:

        @app.get("/docs", include_in_schema=False, dependencies=[requires_key])
        async def docs() -> HTMLResponse:
            return get_swagger_ui_html(openapi_url="/openapi.json", title=f"{app.title} docs")

    return app

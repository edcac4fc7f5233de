"""Typed dependencies: what a route may ask for."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from app.domain.service import RunService
from app.errors import ServiceUnavailable


async def _run_service(request: Request) -> RunService:
    # async: a plain def dependency would cost a thread hop on every request
    service: RunService = request.app.state.run_service
    return service


RunServiceDep = Annotated[RunService, Depends(_run_service)]


async def _accepting_runs(request: Request) -> RunService:
    """The run service, if it takes new runs; 503 with Retry-After once shutdown began."""
    service: RunService = request.app.state.run_service
    if request.app.state.shutting_down() or not service.accepting:
        raise ServiceUnavailable("The service is shutting down.", retry_after_seconds=5)
    return service


AcceptingRunServiceDep = Annotated[RunService, Depends(_accepting_runs)]

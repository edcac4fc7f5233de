"""Typed dependencies: what a route may ask for."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from app.domain.service import RunService


async def _run_service(request: Request) -> RunService:
    # async: a plain def dependency would cost a thread hop on every request
    service: RunService = request.app.state.run_service
    return service


RunServiceDep = Annotated[RunService, Depends(_run_service)]

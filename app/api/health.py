"""Liveness and readiness."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(tags=["health"])


@router.get("/healthz", operation_id="getLiveness", summary="The process is alive")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}

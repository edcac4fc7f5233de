"""Drop-in parity with Kedro's own server (``kedro server start``): the same paths,
request and response schemas. ``POST /run`` waits for the run, but the run goes
through the same pool, store and conflict-aware dispatch as ``POST /runs``.

The 422 of ``POST /run`` and ``GET /snapshot`` is Kedro's too (FastAPI's
``HTTPValidationError``, as ``application/json``): clients generated from Kedro's OpenAPI
document parse it and nothing else. Every other error, there and everywhere, is
problem+json."""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Callable, Coroutine, Sequence
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from pydantic import ValidationError

from app.api.auth import CallerDep
from app.api.deps import AcceptingRunServiceDep, RunServiceDep
from app.api.idempotency import idempotency_key_header, idempotency_key_of
from app.api.problems import problem_responses, quoted_loc
from app.api.schemas import RunCreate
from app.domain.redaction import redact, redact_shapes
from app.domain.runs import RunStatus
from app.errors import FieldError, InvalidRequest, InvalidRunRequest
from app.kedro_bridge import server_models as kedro
from app.kedro_bridge.runners import RUNNER_NAMES, short_runner_name


class KedroValidationErrors(APIRoute):
    """A route whose 422 answers are Kedro's (FastAPI's) ``{"detail": [{loc, msg, type}]}``
    as ``application/json``: request schema errors, and the service's own (limits,
    Idempotency-Key reuse) in the same shape. Other errors pass through to problem+json.
    The caller's input is never echoed (no ``input``), and ``loc`` and ``msg`` are
    redacted and cut as in problems."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handle = super().get_route_handler()

        async def handle_with_kedro_422(request: Request) -> Response:
            try:
                return await handle(request)
            except RequestValidationError as error:
                return kedro_validation_error(
                    [(e["loc"], str(e["msg"]), str(e["type"])) for e in error.errors()]
                )
            except InvalidRequest as error:
                errors = [(e.loc, e.msg, e.type) for e in error.errors]
                return kedro_validation_error(errors or [(("body",), error.detail, error.code)])

        return handle_with_kedro_422


def kedro_validation_error(errors: Sequence[tuple[Sequence[Any], str, str]]) -> JSONResponse:
    """A 422 with FastAPI's ``HTTPValidationError`` body: one entry per (loc, msg, type)."""
    detail = [
        {"type": kind, "loc": quoted_loc(loc), "msg": redact_shapes(message[:1000])}
        for loc, message, kind in errors
    ]
    return JSONResponse({"detail": detail}, status_code=422)


KEDRO_422_OPERATIONS = frozenset({"runPipeline", "getSnapshot"})
"""Operations documenting their own 422 (Kedro's), for the OpenAPI document."""
KEDRO_422: dict[int | str, dict[str, Any]] = {
    422: {
        "description": "The request is not valid (Kedro's body, not problem+json): `detail` "
        "lists each problem by field, for schema errors and the service's own checks alike.",
        "content": {
            "application/json": {"schema": {"$ref": "#/components/schemas/HTTPValidationError"}}
        },
    }
}

router = APIRouter(tags=["kedro-server"], route_class=KedroValidationErrors)
"""``POST /run`` and ``GET /snapshot``, with Kedro's 422."""
probes = APIRouter(tags=["kedro-server"])
"""Open with API keys configured, as ``/healthz``: what probes of Kedro's server call."""

SNAPSHOT_PARAMS_MAX = 2048


@probes.get(
    "/health",
    operation_id="getHealth",
    summary="Kedro-compatible health check",
    response_model=kedro.HealthResponse,
)
async def health(service: RunServiceDep) -> kedro.HealthResponse:
    return kedro.HealthResponse(status="healthy", kedro_version=service.kedro_version)


@router.get(
    "/snapshot",
    operation_id="getSnapshot",
    summary="Kedro's project snapshot",
    response_model=kedro.SnapshotResponse,
    responses=KEDRO_422,
)
async def snapshot(
    service: RunServiceDep,
    params: Annotated[
        str | None,
        Query(
            # URLs over 32 KiB are a 414 (app.api.body_limit), and one character can take
            # 12 bytes percent-encoded: 2,048 characters (24 KiB) always fit.
            max_length=SNAPSHOT_PARAMS_MAX,
            description="Runtime parameters for this snapshot, in `kedro run --params` "
            "format (e.g. `version=02,model.lr=0.01`). Values must not contain commas.",
        ),
    ] = None,
) -> kedro.SnapshotSuccess | kedro.SnapshotFailure:
    """As Kedro's server answers it: failures are a 200 with `status: failure`."""
    try:
        runtime_params = kedro.parse_snapshot_params(params) if params else None
    except Exception as error:
        # It quotes what the caller sent: masked by shapes only, or the answer would say
        # whether a guess is one of the server's secrets.
        return _snapshot_failure(error, redact_shapes(str(error)))
    try:
        result = await service.snapshot(runtime_params)
    except Exception as error:
        return _snapshot_failure(error, redact(str(error)))
    return kedro.SnapshotSuccess(
        status="success",
        metadata=result.metadata,
        pipelines=result.pipelines,
        datasets={
            name: dataclasses.replace(d, filepath=redact(d.filepath)) if d.filepath else d
            for name, d in result.datasets.items()
        },
        parameters=result.parameters,
    )


def _snapshot_failure(error: Exception, message: str) -> kedro.SnapshotFailure:
    return kedro.SnapshotFailure(
        status="failure", error=kedro.ErrorDetail(type=type(error).__qualname__, message=message)
    )


@router.post(
    "/run",
    operation_id="runPipeline",
    summary="Run a pipeline and wait for it (Kedro-compatible)",
    response_model=kedro.RunResponse,
    responses={**problem_responses(409, 429, 503), **KEDRO_422},
)
async def run_pipeline(
    request: kedro.RunRequest,
    service: AcceptingRunServiceDep,
    caller: CallerDep,
    response: Response,
    idempotency_key: Annotated[
        str | None,
        idempotency_key_header(" Here the first request is in flight until its run has ended."),
    ] = None,
) -> kedro.RunSuccess | kedro.RunFailure:
    """Kedro's `POST /run`: answers when the run has ended, with `status: success` or
    `failure` (a 200 either way, as Kedro's server does). `run_id` is Kedro's: the save
    version the run's (latest attempt's) versioned outputs were saved under; `GET
    /runs/{run_id}` takes it, and answers the run with its own id. A request refused
    before anything ran has a fresh uuid as `run_id`, naming no run."""
    new_run_id = str(uuid.uuid4())
    try:
        body = as_run_create(request)
        key = idempotency_key_of(caller, idempotency_key, body) if idempotency_key else None
        view = await service.run_to_end(body.to_spec(), new_run_id, caller=caller, key=key)
    except InvalidRunRequest as error:
        message = "; ".join(e.msg for e in error.errors) or error.detail
        return kedro.RunFailure(
            status="failure",
            run_id=new_run_id,
            duration_ms=0.0,
            error=kedro.ErrorDetail(type="ValueError", message=message),
        )
    run = view.run
    if run.run_id != new_run_id:
        response.headers["Idempotent-Replayed"] = "true"
    run_id = run.current_save_version
    finished = run.finished_at or run.queued_at
    duration_ms = round((finished - run.queued_at).total_seconds() * 1000, 2)
    if run.status is RunStatus.SUCCEEDED:
        return kedro.RunSuccess(status="success", run_id=run_id, duration_ms=duration_ms)
    failure = run.error
    return kedro.RunFailure(
        status="failure",
        run_id=run_id,
        duration_ms=duration_ms,
        error=kedro.ErrorDetail(
            type=failure.type if failure else "RunCancelled",
            message=failure.message if failure else "the run was cancelled",
        ),
    )


def as_run_create(request: kedro.RunRequest) -> RunCreate:
    """Kedro's request as ours, field for field. A runner outside the allowlist is
    InvalidRunRequest, a run failure there too ("not allowed"), never an import; a value
    RunCreate refuses is a RequestValidationError located in the body."""
    runner = short_runner_name(request.runner or "SequentialRunner")
    if runner is None:
        allowed = ", ".join(RUNNER_NAMES)
        raise InvalidRunRequest(
            "runner not allowed",
            [
                FieldError(
                    ("body", "runner"),
                    f"runner {request.runner!r} is not allowed; allowed: {allowed}",
                )
            ],
        )
    try:
        # Kedro's fields are ours by name (runner as its short name).
        return _validate({**request.model_dump(), "runner": runner})
    except ValidationError as error:
        # Located as FastAPI locates body errors, as if Kedro's model had refused it.
        errors = [{**e, "loc": ("body", *e["loc"])} for e in error.errors()]
        raise RequestValidationError(errors) from None


_validate = RunCreate.model_validate

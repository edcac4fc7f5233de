"""Rendering every error as RFC 9457 ``application/problem+json``, in one place."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import (
    validation_error_definition,
    validation_error_response_definition,
)
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from app.api.schemas import FieldErrorOut, Problem
from app.domain.redaction import redact_shapes
from app.errors import InvalidRequest, ServiceError

PROBLEM_MEDIA_TYPE = "application/problem+json"
PROBLEM_BASE = "https://kedro-runs.dev/problems/"

logger = logging.getLogger("kedro_runs.api")


def problem_response(
    status: int,
    code: str,
    title: str,
    detail: str,
    *,
    instance: str | None = None,
    errors: list[FieldErrorOut] | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    # Problems quote what the caller sent (names, paths, keys in `loc`): never a
    # secret's shape in it, and never more than a few characters of any one key.
    # Only shapes: masking the caller's text by the server's known secrets would say
    # which guess is one. Server text put in a problem is redacted where it is made.
    body = Problem(
        type=PROBLEM_BASE + code,
        title=title,
        status=status,
        detail=redact_shapes(detail),
        instance=redact_shapes(instance) if instance else None,
        errors=[
            FieldErrorOut(loc=quoted_loc(e.loc), msg=redact_shapes(e.msg), type=e.type)
            for e in errors
        ]
        if errors is not None
        else None,
    )
    return JSONResponse(
        body.model_dump(exclude_none=True),
        status_code=status,
        media_type=PROBLEM_MEDIA_TYPE,
        headers=headers,
    )


def quoted_loc(loc: Sequence[Any]) -> list[str | int]:
    """A field's path as an answer quotes it: indexes as they are, names cut, secret
    shapes in them masked."""
    return [part if isinstance(part, int) else _cut(redact_shapes(str(part))) for part in loc]


def problem_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses=`` entries documenting problem+json for ``statuses``."""
    descriptions = {
        400: "Malformed request.",
        401: "An API key is required (the server has `api_keys` set) and none, or an "
        "unknown one, was given; `WWW-Authenticate` says how to authenticate.",
        403: "The API key is valid but may not do this (an admin key is needed).",
        404: "No such run.",
        408: "The request body did not arrive in time (`body_timeout_seconds`, 30 s by default).",
        409: "The run is in a state that does not allow this, or a request with the same "
        "Idempotency-Key is still being handled.",
        413: "The request body is larger than the limit (1 MiB by default).",
        414: "The URL is longer than 32 KiB.",
        431: "The request headers are larger than 32 KiB in all.",
        421: "The service has no API keys and the `Host` is not one it serves "
        "(localhost, *.localhost, an IP address, or a name in `allowed_hosts`).",
        415: "The request body is compressed or otherwise encoded (`Content-Encoding`); "
        "send it as plain JSON.",
        500: "The service failed unexpectedly; the error is logged, not returned.",
        422: "The request is not valid; `errors` lists each problem by field.",
        429: "Too many runs are queued; retry after `Retry-After` seconds (an integer).",
        503: "The service cannot take the request now (it is stopping, or its run store's "
        "disk is full and nothing was stored); retry after `Retry-After` seconds.",
    }
    return {
        status: {
            "description": descriptions[status],
            "content": {PROBLEM_MEDIA_TYPE: {"schema": {"$ref": "#/components/schemas/Problem"}}},
        }
        for status in statuses
    }


def add_problem_schema(schema: dict[str, Any], own_422: frozenset[str] = frozenset()) -> None:
    """Make the OpenAPI document say what the service does with errors: one shared
    Problem schema; every 422 is problem+json (FastAPI would document its own body),
    except on the operations named in ``own_422``, whose routes document their 422
    themselves (Kedro's ``POST /run`` and ``GET /snapshot``); every operation may answer
    421 (without keys) and 500, every one behind the API key 401, and every operation
    with a body 400 and 413."""
    problem = Problem.model_json_schema(ref_template="#/components/schemas/{model}")
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    components.update(problem.pop("$defs", {}))
    components["Problem"] = problem
    for operations in schema.get("paths", {}).values():
        for operation in operations.values():
            responses = operation.setdefault("responses", {})
            statuses = [414, 421, 431, 500]
            if "security" in operation:
                statuses.append(401)
            if "422" in responses:
                statuses.append(422)
            if "requestBody" in operation:
                statuses += [400, 408, 413, 415, 422]
            for status, entry in problem_responses(*statuses).items():
                if not (status == 422 and operation.get("operationId") in own_422):
                    responses[str(status)] = entry
    if own_422:
        # FastAPI adds these only while some route keeps its default 422, and none does.
        components.setdefault("HTTPValidationError", validation_error_response_definition)
        components.setdefault("ValidationError", validation_error_definition)
    else:  # FastAPI's HTTPValidationError is then referenced nowhere
        for unused in ("HTTPValidationError", "ValidationError"):
            components.pop(unused, None)


def _cut(text: str, limit: int = 80) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def allowed_methods(request: Request) -> list[str] | None:
    """Every method the OpenAPI document gives this request's path (HEAD with GET, as
    Starlette serves it); None for a path it does not document. Starlette's 405 names
    only the methods of the first route matching the path, and ``/runs`` has two."""
    path = request.scope.get("path", "")
    fitting = [
        (template.count("{"), operations)
        for template, operations in request.app.openapi().get("paths", {}).items()
        if _path_fits(template, path)
    ]
    if not fitting:
        return None
    _, operations = min(fitting, key=lambda fit: fit[0])  # `/runs/plan` over `/runs/{id}`
    methods = {method.upper() for method in operations}
    if "GET" in methods:
        methods.add("HEAD")
    return sorted(methods)


def _path_fits(template: str, path: str) -> bool:
    """Whether ``path`` is an instance of the OpenAPI path ``template`` (a ``{param}``
    stands for one non-empty segment, as Starlette's default convertor)."""
    wanted, given = template.split("/"), path.split("/")
    return len(wanted) == len(given) and all(
        w == g or (w.startswith("{") and w.endswith("}") and g != "")
        for w, g in zip(wanted, given, strict=True)
    )


def install_problem_handlers(app: FastAPI) -> None:
    @app.exception_handler(ServiceError)
    async def _service_error(request: Request, error: ServiceError) -> JSONResponse:
        errors = None
        if isinstance(error, InvalidRequest):
            errors = [FieldErrorOut(loc=list(e.loc), msg=e.msg, type=e.type) for e in error.errors]
        return problem_response(
            error.status,
            error.code,
            error.title,
            error.detail,
            instance=request.url.path,
            errors=errors,
            headers=error.headers() or None,
        )

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request: Request, error: RequestValidationError) -> JSONResponse:
        errors = [
            FieldErrorOut(
                loc=[p if isinstance(p, int) else str(p) for p in e["loc"]],
                msg=str(e["msg"])[:1000],
                type=str(e["type"]),
            )
            for e in error.errors()
        ]
        return problem_response(
            422,
            "validation-error",
            "The request is not valid",
            f"{len(errors)} problem(s) with the request.",
            instance=request.url.path,
            errors=errors,
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, error: StarletteHTTPException) -> JSONResponse:
        headers = dict(error.headers or {})
        allowed = allowed_methods(request) if error.status_code == 405 else None
        if allowed:
            headers["Allow"] = ", ".join(allowed)
        return problem_response(
            error.status_code,
            f"http-{error.status_code}",
            str(error.detail),
            str(error.detail),
            instance=request.url.path,
            headers=headers,
        )

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, error: Exception) -> JSONResponse:
        logger.exception("unexpected error on %s %s", request.method, request.url.path)
        return problem_response(
            500,
            "internal-error",
            "Internal error",
            "The service failed to handle this request; it has been logged.",
            instance=request.url.path,
        )


def problem_body(
    status: int, code: str, title: str, detail: str, instance: str | None = None
) -> bytes:
    """A problem as the bytes of its body, as ``problem_response`` renders it, for answers
    sent below the app (a raw ASGI middleware, or the HTTP protocol itself). ``detail``
    and ``instance`` are the service's own words here, not masked again."""
    problem = Problem(
        type=PROBLEM_BASE + code,
        title=title,
        status=status,
        detail=detail,
        instance=instance,
        errors=None,
    )
    return problem.model_dump_json(exclude_none=True).encode()

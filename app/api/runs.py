"""Routes under /runs: submit, read, list, cancel, events. Thin: parse, call the
service, convert."""

from __future__ import annotations

import logging
import uuid
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Header, Path, Query, Request, Response, status
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field

from app.api.auth import CallerDep
from app.api.deps import AcceptingRunServiceDep, RunServiceDep
from app.api.idempotency import idempotency_key_header, idempotency_key_of
from app.api.problems import problem_responses
from app.api.schemas import (
    EventPageOut,
    LogPageOut,
    OutputsOut,
    RunCreate,
    RunOut,
    RunPageOut,
    event_out,
    log_out,
    run_out,
    run_summary,
)
from app.api.streams import (
    EVENT_STREAM,
    RUN_EVENTS_SSE,
    RUN_LOGS_SSE,
    STREAM_HEADERS,
    resume_point,
    run_events,
    run_logs,
    stream_context,
    wants_event_stream,
)
from app.domain.queries import MAX_PAGE
from app.domain.runs import RunStatus
from app.domain.views import CURSOR_PATTERN

router = APIRouter(prefix="/runs", tags=["runs"])


async def _run_id(
    run_id: Annotated[
        str,
        Path(
            description="The run's id (a uuid4), or a save version it was given: Kedro's run "
            "id, which `POST /run` answers with (its first attempt's or its latest's).",
            max_length=64,
        ),
    ],
    service: RunServiceDep,
    caller: CallerDep,
) -> str:
    return await service.resolve_run_id(run_id, caller=caller)


RunId = Annotated[str, Depends(_run_id)]
"""The id of the run the path names, by its id or by a save version."""


@router.post(
    "",
    status_code=status.HTTP_202_ACCEPTED,
    operation_id="createRun",
    summary="Submit a run",
    response_model=RunOut,
    responses={
        202: {
            "description": "Accepted and stored; poll `Location` for progress.",
            "headers": {
                "Location": {"description": "The run's URL.", "schema": {"type": "string"}}
            },
        },
        **problem_responses(400, 409, 413, 422, 429, 503),
    },
)
async def create_run(
    body: RunCreate,
    service: AcceptingRunServiceDep,
    caller: CallerDep,
    response: Response,
    idempotency_key: Annotated[str | None, idempotency_key_header()] = None,
) -> RunOut:
    """Validate the request against the project, store it as a queued run and return at
    once. The run executes in a worker process when a worker is free and no running run
    touches the same files."""
    spec = body.to_spec()
    run_id = str(uuid.uuid4())
    if idempotency_key is None:
        view = await service.submit(spec, run_id, caller=caller)
    else:
        key = idempotency_key_of(caller, idempotency_key, body)
        view, replayed = await service.submit_once(spec, run_id, key, caller=caller)
        if replayed:
            response.headers["Idempotent-Replayed"] = "true"
    response.headers["Location"] = f"/runs/{view.run.run_id}"
    return run_out(view)


class PlanInputOut(BaseModel):
    name: str
    exists: bool | None = Field(description="Whether it exists now (null: not a local file).")


class PlanOut(BaseModel):
    nodes: list[str] = Field(description="The nodes that would run, in order.")
    inputs: list[PlanInputOut] = Field(description="Datasets they need that no node produces.")
    outputs: list[str] = Field(description="Persisted datasets that would be written.")
    parameters: list[str] = Field(description="Parameters the nodes read.")
    waiting_for: list[str] = Field(
        description="Runs in flight it would wait for (they touch the same files); only runs "
        "the caller may see are named."
    )


@router.post(
    "/plan",
    operation_id="planRun",
    summary="Plan a run without running it",
    response_model=PlanOut,
    responses=problem_responses(400, 413, 422, 503),
)
async def plan_run(body: RunCreate, service: RunServiceDep, caller: CallerDep) -> PlanOut:
    """Takes the same body as `POST /runs` and answers what it would do; invalid requests
    get the same problems. Nothing is stored or run."""
    plan = await service.plan(body.to_spec(), caller=caller)
    return PlanOut(
        nodes=plan.nodes,
        inputs=[PlanInputOut(name=i.name, exists=i.exists) for i in plan.inputs],
        outputs=plan.outputs,
        parameters=plan.parameters,
        waiting_for=plan.waiting_for,
    )


@router.get(
    "",
    operation_id="listRuns",
    summary="List runs, newest first",
    response_model=RunPageOut,
    responses=problem_responses(422),
)
async def list_runs(
    service: RunServiceDep,
    caller: CallerDep,
    status_: Annotated[
        list[RunStatus] | None,
        Query(alias="status", max_length=6, description="Only runs in these states."),
    ] = None,
    pipeline: Annotated[
        str | None, Query(max_length=255, description="Only runs of this pipeline.")
    ] = None,
    limit: Annotated[
        int, Query(ge=1, le=MAX_PAGE, description=f"Page size, at most {MAX_PAGE}.")
    ] = 50,
    cursor: Annotated[
        str | None,
        Query(
            pattern=CURSOR_PATTERN,
            max_length=32,
            description="`next` from the previous page: the save version its last run was "
            "submitted under (a retried run shows its latest attempt's instead); the page "
            "holds the runs submitted before it.",
        ),
    ] = None,
) -> RunPageOut:
    page = await service.list_runs(status_ or [], pipeline, cursor, limit, caller=caller)
    return RunPageOut(items=[run_summary(view) for view in page.runs], next=page.next_cursor)


@router.get(
    "/{run_id}",
    operation_id="getRun",
    summary="Read a run",
    response_model=RunOut,
    responses=problem_responses(404, 422),
)
async def get_run(
    run_id: RunId,
    service: RunServiceDep,
    caller: CallerDep,
    wait: Annotated[
        float,
        Query(
            ge=0,
            le=60,
            description="Long poll: hold the request up to this many seconds until the run "
            "ends, then answer (at once if it already has).",
        ),
    ] = 0,
) -> RunOut:
    """The run's state, progress, nodes, request and timestamps. A failed run is a 200
    with `status: failed` and an `error`."""
    return run_out(await service.get(run_id, wait_seconds=wait, caller=caller))


@router.post(
    "/{run_id}/cancel",
    operation_id="cancelRun",
    summary="Cancel a run",
    response_model=RunOut,
    status_code=status.HTTP_202_ACCEPTED,
    responses={
        202: {
            "description": "Cancelled (a queued run) or stopping at its next node "
            "boundary (a running run; status `cancelling`). A run whose last node has "
            "already begun has no boundary left: if that node completes within the grace "
            "period the run ends `succeeded` (its work is done and saved), and its "
            "`run_succeeded` event has `cancel_requested: true`."
        },
        **problem_responses(404, 409, 422, 503),
    },
)
async def cancel_run(run_id: RunId, service: RunServiceDep, caller: CallerDep) -> RunOut:
    """A queued run is cancelled at once. A running run stops before its next node; if it
    has not stopped within the grace period its worker process is killed and replaced. A
    cancel that comes during the last node cannot undo it: the run ends `succeeded` when
    that node completes within the grace period. A run that already ended is a 409."""
    return run_out(await service.cancel(run_id, caller=caller))


@router.get(
    "/{run_id}/events",
    operation_id="listRunEvents",
    summary="Read a run's events, or follow them live",
    response_model=EventPageOut,
    responses={
        200: {
            "description": "JSON by default. With `Accept: text/event-stream`, Server-Sent "
            "Events: `id:` is the event's `seq`, `event:` its type, `data:` the event as "
            "JSON; a comment heartbeat when idle; the stream ends after the terminal event. "
            "Resume with `Last-Event-ID` (or `after`): no gaps, no duplicates.",
            "content": RUN_EVENTS_SSE,
        },
        **problem_responses(404, 422),
    },
)
async def list_run_events(
    run_id: RunId,
    request: Request,
    service: RunServiceDep,
    caller: CallerDep,
    after: Annotated[
        int, Query(ge=0, le=2**62, description="Only events with `seq` above this.")
    ] = 0,
    limit: Annotated[int, Query(ge=1, le=1000, description="At most this many events.")] = 1000,
    last_event_id: Annotated[str | None, Header(alias="Last-Event-ID", max_length=32)] = None,
) -> Response | EventPageOut:
    if wants_event_stream(request):
        await service.status_of(run_id, caller=caller)  # 404 before the stream starts
        limits, shutting_down = stream_context(request)
        return StreamingResponse(
            run_events(
                service,
                run_id,
                resume_point(after, last_event_id),
                limits,
                shutting_down,
                caller,
            ),
            media_type=EVENT_STREAM,
            headers=STREAM_HEADERS,
        )
    events = await service.events(run_id, after, limit, caller=caller)
    return EventPageOut(
        items=[event_out(e) for e in events], last_seq=events[-1].seq if events else after
    )


@router.get(
    "/{run_id}/logs",
    operation_id="listRunLogs",
    summary="Read a run's log, or follow it live",
    response_model=LogPageOut,
    responses={
        200: {
            "description": "JSON by default. With `Accept: text/event-stream`, one SSE "
            "message per line (`id:` its seq, `event: log`), until the run has ended.",
            "content": RUN_LOGS_SSE,
        },
        **problem_responses(404, 422),
    },
)
async def list_run_logs(
    run_id: RunId,
    request: Request,
    service: RunServiceDep,
    caller: CallerDep,
    after: Annotated[int, Query(ge=0, le=2**62, description="Only lines after this seq.")] = 0,
    level: Annotated[
        Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"],
        Query(description="Only lines at this level or above."),
    ] = "DEBUG",
    limit: Annotated[int, Query(ge=1, le=1000, description="At most this many lines.")] = 1000,
    last_event_id: Annotated[str | None, Header(alias="Last-Event-ID", max_length=32)] = None,
) -> Response | LogPageOut:
    """Every log record emitted inside the run (Kedro's, the project's, any library's),
    with level, logger, node and time, redacted. A run keeps at most `run_log_cap`
    records; `truncated` says when more were dropped."""
    if wants_event_stream(request):
        await service.status_of(run_id, caller=caller)  # 404 before the stream starts
        limits, shutting_down = stream_context(request)
        return StreamingResponse(
            run_logs(
                service,
                run_id,
                resume_point(after, last_event_id),
                logging.getLevelNamesMapping()[level],
                limits,
                shutting_down,
                caller,
            ),
            media_type=EVENT_STREAM,
            headers=STREAM_HEADERS,
        )
    min_level = logging.getLevelNamesMapping()[level]
    lines, dropped = await service.logs(run_id, after, min_level, limit, caller=caller)
    return LogPageOut(
        items=[log_out(line) for line in lines],
        last_seq=lines[-1].seq if lines else after,
        truncated=dropped > 0,
        dropped=dropped,
    )


@router.get(
    "/{run_id}/outputs",
    operation_id="getRunOutputs",
    summary="What a run saved and returned",
    response_model=OutputsOut,
    responses=problem_responses(404, 422),
)
async def get_run_outputs(run_id: RunId, service: RunServiceDep, caller: CallerDep) -> OutputsOut:
    """Every dataset the run saved (type, save version when versioned, redacted path), and
    its free outputs: inline as JSON when serialisable and small (`output_inline_max_bytes`),
    otherwise described by type and shape or length."""
    outputs = await service.outputs(run_id, caller=caller)
    if outputs is None:
        return OutputsOut(recorded=False, saved=[], free=[])
    return OutputsOut.model_validate({"recorded": True, **outputs})

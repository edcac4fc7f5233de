"""Server-Sent Events: a run's events live, and run state changes for all runs.

Streams pull from the store (or the in-memory state feed) at their own pace and
only wait on change signals, so a slow or stalled client holds up nobody. Each
stream sends a comment heartbeat when idle, ends after a run's terminal event,
after its maximum lifetime, or as soon as the service starts shutting down.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Header
from fastapi.responses import StreamingResponse
from starlette.requests import Request

from app.api.auth import CallerDep
from app.api.deps import RunServiceDep
from app.api.problems import problem_responses
from app.api.schemas import event_out, log_out
from app.domain.callers import Caller
from app.domain.ledger import FEED
from app.domain.runs import TERMINAL_EVENT, TERMINAL_STATUSES
from app.domain.service import RunService, logs_key
from app.domain.signals import ChangeSignal

EVENT_STREAM = "text/event-stream"
STREAM_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
_POLL_SECONDS = 1.0  # the longest a stream sleeps without looking around


@dataclass(frozen=True)
class StreamLimits:
    heartbeat_seconds: float
    max_seconds: float


def sse_content(event: dict[str, Any], data: dict[str, Any]) -> dict[str, Any]:
    """OpenAPI ``content`` of an event stream. Before OpenAPI 3.2, the schema of a
    ``text/event-stream`` entry describes each event: its ``id`` (a decimal sequence
    number), ``event`` (its type) and ``data`` (JSON of the given schema). Heartbeats are
    SSE comments, not events."""
    schema = {
        "type": "object",
        "description": "One event of the stream; comment lines (heartbeats) are not events.",
        "required": ["id", "event", "data"],
        "properties": {
            "id": {"type": "string", "pattern": "^[0-9]+$", "description": "Resume after it."},
            "event": event,
            "data": {
                "type": "string",
                "contentMediaType": "application/json",
                "contentSchema": data,
            },
        },
    }
    return {EVENT_STREAM: {"schema": schema}}


def _component(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


RUN_EVENTS_SSE = sse_content(_component("EventType"), _component("EventOut"))
RUN_LOGS_SSE = sse_content({"const": "log"}, _component("LogLineOut"))
STATE_CHANGES_SSE = sse_content(
    {"const": "run_state"},
    {
        "type": "object",
        "required": ["run_id", "status", "at"],
        "properties": {
            "run_id": {"type": "string"},
            "status": _component("RunStatus"),
            "at": {"type": "string", "format": "date-time"},
        },
    },
)


def wants_event_stream(request: Request) -> bool:
    return EVENT_STREAM in request.headers.get("accept", "")


def resume_point(after: int, last_event_id: str | None) -> int:
    """Where a stream resumes: ``Last-Event-ID`` (sent by reconnecting clients) wins."""
    # ASCII digits only: str.isdigit() also accepts "²", which int() refuses.
    if last_event_id and re.fullmatch(r"[0-9]{1,32}", last_event_id.strip()):
        return min(int(last_event_id.strip()), 2**62)
    return after


def sse(event_id: int, event: str, data: str) -> bytes:
    return f"id: {event_id}\nevent: {event}\ndata: {data}\n\n".encode()


class _Clock:
    """When the stream must end, and when it last said anything."""

    def __init__(self, limits: StreamLimits, shutting_down: Callable[[], bool]) -> None:
        self._limits = limits
        self._shutting_down = shutting_down
        self._deadline = time.monotonic() + limits.max_seconds
        self._last_sent = time.monotonic()

    def over(self, service: RunService) -> bool:
        return service.stopping or self._shutting_down() or time.monotonic() >= self._deadline

    def sent(self) -> None:
        self._last_sent = time.monotonic()

    def heartbeat_due(self) -> bool:
        return time.monotonic() - self._last_sent >= self._limits.heartbeat_seconds

    def next_wait(self) -> float:
        return max(0.01, min(self._limits.heartbeat_seconds, _POLL_SECONDS))


HEARTBEAT = b": keep-alive\n\n"


async def _idle(clock: _Clock, signal: ChangeSignal, key: str) -> bytes | None:
    """Wait a little for ``key`` to change; the heartbeat comment if one is due."""
    changed = await signal.wait(key, clock.next_wait())
    if not changed and clock.heartbeat_due():
        clock.sent()
        return HEARTBEAT
    return None


async def run_events(
    service: RunService,
    run_id: str,
    after: int,
    limits: StreamLimits,
    shutting_down: Callable[[], bool],
    caller: Caller,
) -> AsyncIterator[bytes]:
    """A run's events with ``seq > after``, as SSE, until its terminal event."""
    clock = _Clock(limits, shutting_down)
    last = after
    terminal_types = set(TERMINAL_EVENT.values())
    while True:
        events = await service.events(run_id, last, 1000, caller=caller)
        for event in events:
            body = event_out(event).model_dump_json()
            yield sse(event.seq, str(event.type), body)
            last = event.seq
            if event.type in terminal_types:
                return
        if events:
            clock.sent()
            continue
        ended = await service.status_of(run_id, caller=caller) in TERMINAL_STATUSES
        if ended and not await service.events(run_id, last, 1, caller=caller):
            return  # resumed after the terminal event: nothing more will come
        if clock.over(service):
            return
        beat = await _idle(clock, service.event_signal, run_id)
        if beat:
            yield beat


async def run_logs(
    service: RunService,
    run_id: str,
    after: int,
    min_level: int,
    limits: StreamLimits,
    shutting_down: Callable[[], bool],
    caller: Caller,
) -> AsyncIterator[bytes]:
    """A run's log lines with ``seq > after``, as SSE (``event: log``), until the run has
    ended and every line was sent."""
    clock = _Clock(limits, shutting_down)
    last = after
    while True:
        ended = await service.status_of(run_id, caller=caller) in TERMINAL_STATUSES
        lines, _dropped = await service.logs(run_id, last, min_level, 1000, caller=caller)
        for stored in lines:
            yield sse(stored.seq, "log", log_out(stored).model_dump_json())
            last = stored.seq
        if lines:
            clock.sent()
            continue
        if ended or clock.over(service):
            return  # lines are recorded before the run's end, so none can follow
        beat = await _idle(clock, service.event_signal, logs_key(run_id))
        if beat:
            yield beat


async def state_changes(
    service: RunService,
    after: int,
    limits: StreamLimits,
    shutting_down: Callable[[], bool],
    caller: Caller,
) -> AsyncIterator[bytes]:
    """The state changes after id ``after`` of every run ``caller`` may see. Ids are the
    store's: durable, and the same on every replica."""
    clock = _Clock(limits, shutting_down)
    last = after
    while not clock.over(service):
        changes = await service.changes_after(last, caller=caller)
        for change in changes:
            data = json.dumps(
                {
                    "run_id": change.run_id,
                    "status": change.status,
                    "at": change.at.isoformat().replace("+00:00", "Z"),
                }
            )
            yield sse(change.id, "run_state", data)
            last = change.id
        if changes:
            clock.sent()
            continue
        beat = await _idle(clock, service.change_signal, FEED)
        if beat:
            yield beat


def stream_context(request: Request) -> tuple[StreamLimits, Callable[[], bool]]:
    """The app's stream limits and its "the server is shutting down" test."""
    limits: StreamLimits = request.app.state.stream_limits
    shutting_down: Callable[[], bool] = request.app.state.shutting_down
    return limits, shutting_down


router = APIRouter(tags=["runs"])


@router.get(
    "/events",
    operation_id="streamStateChanges",
    summary="Follow every run's state changes (Server-Sent Events)",
    response_class=StreamingResponse,
    responses={
        200: {
            "description": "`id:` orders every change, durably and across replicas; "
            "`event: run_state`; `data:` `{run_id, status, at}`. Resume with `Last-Event-ID`.",
            "content": STATE_CHANGES_SSE,
        },
        **problem_responses(422),
    },
)
async def follow_state_changes(
    request: Request,
    service: RunServiceDep,
    caller: CallerDep,
    last_event_id: Annotated[str | None, Header(alias="Last-Event-ID", max_length=32)] = None,
) -> StreamingResponse:
    limits, shutting_down = stream_context(request)
    start = 0 if last_event_id else await service.last_change_id()
    after = resume_point(start, last_event_id)
    return StreamingResponse(
        state_changes(service, after, limits, shutting_down, caller),
        media_type=EVENT_STREAM,
        headers=STREAM_HEADERS,
    )

"""The wire format: request and response models. A contract, so every field is described
and bounded, requests forbid unknown fields, and responses are built explicitly from
domain objects (never from rows)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal, cast

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator

from app.domain.limits import MAX_LIST_ITEMS, validated_params
from app.domain.ports import StoredLogLine
from app.domain.redaction import mask_data, secrets_in
from app.domain.runs import (
    EventType,
    FailureReason,
    NodeStatus,
    RunEvent,
    RunSpec,
    RunStatus,
)
from app.domain.views import RunView
from app.kedro_bridge.runners import short_runner_name

Name = Annotated[str, StringConstraints(min_length=1, max_length=255)]
NameList = Annotated[list[Name], Field(max_length=MAX_LIST_ITEMS)]
MAX_TIMEOUT_SECONDS = 366 * 86400  # no server may allow more (settings)
Version = Annotated[str, StringConstraints(min_length=1, max_length=64)]
# app.kedro_bridge.runners.RUNNER_NAMES, spelled out for the type checker.
RunnerName = Literal[
    "SequentialRunner", "ThreadRunner", "kedro.runner.SequentialRunner", "kedro.runner.ThreadRunner"
]


class RunCreate(BaseModel):
    """A run request: which pipelines, which filters, which params. Same fields as
    ``kedro run`` and Kedro's own server; everything is optional."""

    model_config = ConfigDict(extra="forbid", strict=True)

    pipeline_names: NameList | None = Field(
        None, description="Registered pipelines to run, combined. Default: `__default__`."
    )
    tags: NameList | None = Field(None, description="Run only nodes with any of these tags.")
    node_names: NameList | None = Field(None, description="Run only these nodes.")
    from_nodes: NameList | None = Field(None, description="Start from these nodes.")
    to_nodes: NameList | None = Field(None, description="Stop at these nodes.")
    from_inputs: NameList | None = Field(None, description="Start from these datasets.")
    to_outputs: NameList | None = Field(None, description="Stop once these datasets exist.")
    namespaces: NameList | None = Field(None, description="Run only nodes in these namespaces.")
    load_versions: Annotated[dict[Name, Version], Field(max_length=MAX_LIST_ITEMS)] | None = Field(
        None, description="Pin versioned datasets to a version: `{dataset: version}`."
    )
    only_missing_outputs: bool = Field(
        False, description="Skip nodes whose persisted outputs already exist."
    )
    runner: RunnerName = Field(
        "SequentialRunner",
        description="The runner: `SequentialRunner` or `ThreadRunner`, by name or by Kedro's "
        "full name (`kedro.runner.ThreadRunner`; stored as the short name). An allowlist: "
        "nothing is imported from the request.",
    )
    is_async: bool = Field(False, description="Load and save datasets asynchronously.")
    params: dict[str, Any] | None = Field(
        None,
        description=(
            "Runtime parameters, merged over the project's parameters (Kedro's `runtime_params`). "
            'A dotted key is a path, as in `kedro run --params`: `{"model.lr": 0.1}` is '
            '`{"model": {"lr": 0.1}}` (stored nested; a key given both ways is a 422). '
            "At most 16 levels deep, 1,000 keys, strings up to 64 KiB; "
            "no string may contain `${` (OmegaConf interpolation), NUL, NaN or Infinity."
        ),
    )

    @field_validator("params")
    @classmethod
    def _bounded_params(cls, params: dict[str, Any] | None) -> dict[str, Any] | None:
        return validated_params(params)

    @field_validator("runner")
    @classmethod
    def _short_runner_name(cls, runner: RunnerName) -> RunnerName:
        # Only allowed names get here (the Literal), each of which has a short name.
        return cast(RunnerName, short_runner_name(runner))

    timeout_seconds: (
        Annotated[float, Field(gt=0, le=MAX_TIMEOUT_SECONDS, allow_inf_nan=False)] | None
    ) = Field(
        None,
        description="Fail the run (reason `timeout`), stopping it if it runs, when it has "
        "not ended this long after it was submitted: time queued and every retry count. "
        "At most the server's maximum; default: the server's default.",
    )

    max_attempts: Annotated[int, Field(ge=1, le=5)] = Field(
        1,
        description="Opt-in retry: how many times the run may be handed to a worker. A run "
        "whose worker process dies, or that is active when the service stops or crashes, goes "
        "back to `queued` while it has attempts left (each attempt under a fresh "
        "`save_version`); otherwise it fails. Errors, timeouts and cancels are never retried. "
        "Default 1: no retry.",
    )

    def to_spec(self) -> RunSpec:
        """The request as the domain holds it: a field left out (null, or an empty list or
        object) takes the spec's default. The fields are the spec's, one for one."""
        return RunSpec.from_values(self.model_dump())


class RunRequestOut(BaseModel):
    """The request as accepted, with defaults filled in."""

    pipeline_names: list[str]
    tags: list[str]
    node_names: list[str]
    from_nodes: list[str]
    to_nodes: list[str]
    from_inputs: list[str]
    to_outputs: list[str]
    namespaces: list[str]
    load_versions: dict[str, str]
    only_missing_outputs: bool
    runner: str
    is_async: bool
    params: dict[str, Any] = Field(
        description="As given, except that the secrets the params themselves hold show "
        "as `<redacted>`: values under keys that name a secret, secrets in a secret's "
        "shape (URL credentials, `password=...`, bearer tokens, ...). Never masked by the "
        "server's own secrets: the echo does not tell whether a value is one."
    )
    params_masked: list[str] = Field(
        description="JSON Pointers (RFC 6901) of the `params` strings in which a secret "
        "was masked; empty when `params` is exactly as given."
    )
    timeout_seconds: float | None
    max_attempts: int


class RunErrorOut(BaseModel):
    reason: FailureReason = Field(
        description="error: the pipeline raised; worker_lost: the "
        "worker process died; timeout; interrupted: the service stopped."
    )
    type: str = Field(description="The exception type.")
    message: str = Field(description="The exception message, with credentials redacted.")


class ProgressOut(BaseModel):
    nodes_total: int
    nodes_done: int


class NodeOut(BaseModel):
    name: str
    status: NodeStatus
    started_at: datetime | None
    finished_at: datetime | None


class TimestampsOut(BaseModel):
    queued_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    cancel_requested_at: datetime | None


class RunSummary(BaseModel):
    run_id: str = Field(description="The run's identity, a uuid4.")
    status: RunStatus
    pipeline_names: list[str]
    save_version: str = Field(
        description="What Kedro received as its run id for the latest attempt: the save "
        "version of every versioned dataset it wrote. A retried run's earlier attempts are in "
        "its `run_started` events."
    )
    attempts: int = Field(
        description="How many times the run was handed to a worker (counted when it was "
        "marked running, and given back if no worker had taken it when the service crashed "
        "or stopped); at most the request's `max_attempts`."
    )
    waiting_for: list[str] = Field(
        description="Runs this queued run waits for because they touch the same files; only "
        "runs the caller may see are named (another API key's runs are not)."
    )
    error: RunErrorOut | None
    timestamps: TimestampsOut


class RunOut(RunSummary):
    request: RunRequestOut
    env: str | None
    kedro_version: str
    project_commit: str | None
    progress: ProgressOut
    nodes: list[NodeOut]


class RunPageOut(BaseModel):
    items: list[RunSummary]
    next: str | None = Field(description="Cursor of the next (older) page; null on the last.")


class EventOut(BaseModel):
    seq: int = Field(description="Position in the run's event stream, from 1.")
    type: EventType
    at: datetime
    node: str | None
    data: dict[str, Any]


class EventPageOut(BaseModel):
    items: list[EventOut]
    last_seq: int = Field(description="Pass as `after` to get the events that follow.")


class LogLineOut(BaseModel):
    seq: int = Field(description="Position in the run's log, from 1.")
    at: datetime
    level: str
    logger: str
    node: str | None = Field(description="The node that was running, if any.")
    message: str = Field(description="The formatted message, credentials redacted.")


class LogPageOut(BaseModel):
    items: list[LogLineOut]
    last_seq: int = Field(description="Pass as `after` to get the lines that follow.")
    truncated: bool = Field(description="Whether records were dropped over the run's cap.")
    dropped: int = Field(description="How many records were dropped over the cap.")


class SavedDatasetOut(BaseModel):
    name: str
    type: str | None
    versioned: bool
    save_version: str | None = Field(description="The version it was saved under, if versioned.")
    filepath: str | None = Field(description="Where it was saved, credentials redacted.")


class FreeOutputOut(BaseModel):
    name: str | None = None
    type: str | None = None
    inline: bool = Field(False, description="Whether `value` holds the output itself.")
    value: Any = Field(None, description="The output, when JSON-serialisable and small.")
    shape: list[int] | None = None
    length: int | None = None
    error: str | None = Field(None, description="Why the outputs could not be described.")
    masked: list[str] = Field(
        default_factory=list,
        description="JSON Pointers (RFC 6901) into `value` of the strings in which a known "
        "secret (the project's credentials, the run's secret params) shows as "
        "`<redacted>`; empty when `value` is exactly what the run returned.",
    )


class OutputsOut(BaseModel):
    recorded: bool = Field(description="False until the run has ended.")
    saved: list[SavedDatasetOut] = Field(description="Every dataset the run saved.")
    free: list[FreeOutputOut] = Field(
        description="The run's free outputs (what `session.run` returns)."
    )


class FieldErrorOut(BaseModel):
    loc: list[str | int]
    msg: str
    type: str


class Problem(BaseModel):
    """RFC 9457 problem details; every non-2xx response has this shape."""

    type: str = Field(description="A URI reference naming the kind of problem.")
    title: str
    status: int
    detail: str
    instance: str | None = None
    errors: list[FieldErrorOut] | None = Field(None, description="Field-level problems (422).")


def run_summary(view: RunView) -> RunSummary:
    return RunSummary(**_summary_fields(view))


def run_out(view: RunView) -> RunOut:
    run = view.run
    return RunOut(
        **_summary_fields(view),
        request=_request_out(run.spec.to_record()),
        env=run.env,
        kedro_version=run.kedro_version,
        project_commit=run.project_commit,
        progress=ProgressOut(nodes_total=len(run.nodes), nodes_done=view.nodes_done),
        nodes=[
            NodeOut(
                name=n.name, status=n.status, started_at=n.started_at, finished_at=n.finished_at
            )
            for n in view.nodes
        ],
    )


def _request_out(record: dict[str, Any]) -> RunRequestOut:
    # Params are stored as given (a run needs them to execute, and again after a
    # restart) but never echoed with a secret in them; they are data, so only secrets
    # are masked, and where is said: those the params themselves hold (under a key
    # naming one, or in a secret's shape), never the server's known ones, whose
    # masking would tell the caller which guess in its params is one.
    params, masked = mask_data(record["params"], secrets_in(record["params"]), known=False)
    return RunRequestOut(**{**record, "params": params, "params_masked": masked})


def _summary_fields(view: RunView) -> dict[str, Any]:
    run = view.run
    error = run.error
    return {
        "run_id": run.run_id,
        "status": run.status,
        "pipeline_names": list(run.spec.pipeline_names),
        "save_version": run.current_save_version,
        "attempts": run.attempts,
        "waiting_for": view.waiting_for,
        "error": RunErrorOut(reason=error.reason, type=error.type, message=error.message)
        if error
        else None,
        "timestamps": TimestampsOut(
            queued_at=run.queued_at,
            started_at=run.started_at,
            finished_at=run.finished_at,
            cancel_requested_at=run.cancel_requested_at,
        ),
    }


def event_out(event: RunEvent) -> EventOut:
    return EventOut(seq=event.seq, type=event.type, at=event.at, node=event.node, data=event.data)


def log_out(stored: StoredLogLine) -> LogLineOut:
    line = stored.line
    return LogLineOut(
        seq=stored.seq,
        at=line.at,
        level=line.level,
        logger=line.logger,
        node=line.node,
        message=line.message,
    )

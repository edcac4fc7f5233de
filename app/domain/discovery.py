"""What the project offers, as callers discover it: pipelines, nodes, datasets, plans."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class PipelineSummary:
    name: str
    node_count: int
    tags: list[str]
    namespaces: list[str]


@dataclass(frozen=True)
class NodeInfo:
    name: str
    function: str
    inputs: list[str]
    outputs: list[str]
    tags: list[str]
    namespace: str | None


@dataclass(frozen=True)
class PipelineDetail:
    name: str
    nodes: list[NodeInfo]  # in execution order
    inputs: list[str]  # free inputs: what no node of the pipeline produces
    outputs: list[str]  # free outputs: what no node of the pipeline consumes
    parameters: dict[str, Any]  # parameter keys read, with the project's default values


@dataclass(frozen=True)
class DatasetInfo:
    name: str
    type: str | None
    versioned: bool
    filepath: str | None  # credentials redacted


@dataclass(frozen=True)
class PlanInput:
    name: str
    exists: bool | None  # None: cannot tell (not a local file)


@dataclass(frozen=True)
class PlanDetail:
    """What a run request would do, without running it."""

    nodes: list[str]
    inputs: list[PlanInput]
    outputs: list[str]
    parameters: list[str]
    waiting_for: list[str] = field(default_factory=list)

"""Describing the project for callers: pipelines, datasets, parameters, plans, and
Kedro's own snapshot. Functions over an open KedroInspector; the inspector's lock
serialises anything that resolves configuration."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from app.domain.discovery import (
    DatasetInfo,
    NodeInfo,
    PipelineDetail,
    PipelineSummary,
    PlanDetail,
    PlanInput,
)
from app.domain.redaction import redact

if TYPE_CHECKING:
    from kedro.pipeline import Pipeline

    from app.kedro_bridge.resolved_catalog import ResolvedCatalog


def summarise(name: str, pipeline: Pipeline) -> PipelineSummary:
    nodes = pipeline.nodes
    tags = sorted(set().union(*(node.tags for node in nodes))) if nodes else []
    namespaces = sorted({node.namespace for node in nodes if node.namespace})
    return PipelineSummary(name, len(nodes), tags, namespaces)


def detail(name: str, pipeline: Pipeline, parameters: dict[str, Any]) -> PipelineDetail:
    nodes = [
        NodeInfo(
            name=node.name,
            function=_function_name(node.func),
            inputs=list(node.inputs),
            outputs=list(node.outputs),
            tags=sorted(node.tags),
            namespace=node.namespace,
        )
        for node in pipeline.nodes
    ]
    return PipelineDetail(
        name=name,
        nodes=nodes,
        inputs=sorted(n for n in pipeline.inputs() if not _is_parameter(n)),
        outputs=sorted(pipeline.outputs()),
        parameters=parameter_defaults(pipeline, parameters),
    )


def parameter_defaults(pipeline: Pipeline, parameters: dict[str, Any]) -> dict[str, Any]:
    """Each parameter key the pipeline reads (``params:a.b``, or ``parameters`` for all),
    with its value in the project's configuration (None where it has none)."""
    keys = sorted({name for node in pipeline.nodes for name in node.inputs if _is_parameter(name)})
    result: dict[str, Any] = {}
    for key in keys:
        if key == "parameters":
            result[key] = parameters
            continue
        value: Any = parameters
        for part in key.removeprefix("params:").split("."):
            value = value.get(part) if isinstance(value, dict) else None
        result[key.removeprefix("params:")] = value
    return result


def datasets(config: dict[str, Any]) -> list[DatasetInfo]:
    """Catalog entries (not factory patterns) with type, versioning and redacted path."""
    entries = []
    for name in sorted(config):
        entry = config[name]
        if "{" in name or not isinstance(entry, dict) or name.startswith("_"):
            continue
        target = entry.get("filepath") or entry.get("path")
        entries.append(
            DatasetInfo(
                name=name,
                type=str(entry["type"]) if entry.get("type") else None,
                versioned=bool(entry.get("versioned", False)),
                filepath=redact(str(target)) if target else None,
            )
        )
    return entries


def plan_detail(pipeline: Pipeline, catalog: ResolvedCatalog) -> PlanDetail:
    """Nodes in order, the inputs no selected node produces (and whether each exists
    now, for local files), the outputs written, and the parameters read."""
    produced = pipeline.all_outputs()
    needed = sorted(
        name
        for node in pipeline.nodes
        for name in node.inputs
        if name not in produced and not _is_parameter(name)
    )
    inputs = []
    for name in dict.fromkeys(needed):
        key = catalog.locate(name).key
        exists = os.path.exists(key) if key and key.startswith("/") else None
        inputs.append(PlanInput(name, exists))
    parameters = sorted(
        {name for node in pipeline.nodes for name in node.inputs if _is_parameter(name)}
    )
    outputs = sorted(name for name in produced if catalog.locate(name).key)
    return PlanDetail([node.name for node in pipeline.nodes], inputs, outputs, parameters)


def _is_parameter(name: str) -> bool:
    return name == "parameters" or name.startswith("params:")


def _function_name(func: Any) -> str:
    module = getattr(func, "__module__", None) or ""
    qualname = getattr(func, "__qualname__", None) or repr(func)
    return f"{module}.{qualname}" if module else qualname

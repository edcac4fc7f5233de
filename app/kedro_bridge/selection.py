"""Which nodes a run request selects, and what in it names nothing in the project:
the filters as Kedro applies them, and one FieldError per unknown name or bad load
version (with bounded "did you mean" hints)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from app.domain.redaction import redact_shapes
from app.domain.runs import RunSpec
from app.errors import FieldError, InvalidRunRequest
from app.kedro_bridge.suggestions import Suggestions

if TYPE_CHECKING:
    from kedro.pipeline import Pipeline

    from app.kedro_bridge.resolved_catalog import ResolvedCatalog


def filter_pipeline(combined: Pipeline, spec: RunSpec) -> Pipeline:
    """``combined`` filtered as ``spec`` asks. Raises InvalidRunRequest (no node left)."""
    try:
        return combined.filter(
            tags=spec.tags or None,
            from_nodes=spec.from_nodes or None,
            to_nodes=spec.to_nodes or None,
            node_names=spec.node_names or None,
            from_inputs=spec.from_inputs or None,
            to_outputs=spec.to_outputs or None,
            node_namespaces=spec.namespaces or None,
        )
    except ValueError as error:
        raise InvalidRunRequest(
            "The filters select no node.",
            [
                FieldError(
                    ("body",),
                    # Kedro quotes the caller's node names: shapes only, as for any caller text.
                    f"the filters select no node of the pipeline: {redact_shapes(str(error))}",
                    "empty_selection",
                )
            ],
        ) from error


def unknown_names(spec: RunSpec, pipeline: Pipeline, suggestions: Suggestions) -> list[FieldError]:
    node_names = {node.name for node in pipeline.nodes}
    tags = set().union(*(node.tags for node in pipeline.nodes)) if pipeline.nodes else set()
    namespaces = {prefix for node in pipeline.nodes for prefix in _namespace_prefixes(node)}
    datasets = pipeline.datasets()
    checks: list[tuple[str, Iterable[str], set[str], str]] = [
        ("node_names", spec.node_names, node_names, "node"),
        ("from_nodes", spec.from_nodes, node_names, "node"),
        ("to_nodes", spec.to_nodes, node_names, "node"),
        ("tags", spec.tags, tags, "tag"),
        ("namespaces", spec.namespaces, namespaces, "namespace"),
        ("from_inputs", spec.from_inputs, datasets, "dataset"),
        ("to_outputs", spec.to_outputs, datasets, "dataset"),
    ]
    errors = []
    for field_name, requested, known, what in checks:
        for index, name in enumerate(requested):
            if name not in known:
                errors.append(
                    FieldError(
                        ("body", field_name, index),
                        f"no {what} named {name!r} in the selected pipelines"
                        f"{hint(suggestions.for_name(name, known))}",
                        f"unknown_{what}",
                    )
                )
    return errors


def load_version_errors(
    spec: RunSpec, pipeline: Pipeline, catalog: ResolvedCatalog, suggestions: Suggestions
) -> list[FieldError]:
    datasets = pipeline.datasets()
    errors = []
    for name, version in spec.load_versions.items():
        where = ("body", "load_versions", name)
        if name not in datasets:
            errors.append(
                FieldError(
                    where,
                    f"no dataset named {name!r} in the selected "
                    f"pipelines{hint(suggestions.for_name(name, datasets))}",
                    "unknown_dataset",
                )
            )
        elif not catalog.locate(name).versioned:
            errors.append(FieldError(where, f"dataset {name!r} is not versioned", "not_versioned"))
        elif not _is_safe_version(version):
            errors.append(
                FieldError(
                    where,
                    "a version must be one non-empty path component (no '/', '\\', '..')",
                    "bad_version",
                )
            )
    return errors


def _is_safe_version(version: str) -> bool:
    return (
        bool(version)
        and version not in {".", ".."}
        and not any(char in version for char in "/\\\x00")
    )


def hint(matches: list[str]) -> str:
    """The "did you mean" tail of a message naming something unknown ("" without matches)."""
    return f"; did you mean {', '.join(repr(m) for m in matches)}?" if matches else ""


def _namespace_prefixes(node: Any) -> list[str]:
    if not node.namespace:
        return []
    parts = node.namespace.split(".")
    return [".".join(parts[: i + 1]) for i in range(len(parts))]

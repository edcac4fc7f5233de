"""Which nodes a run request selects, and what in it names nothing in the project:
the filters as Kedro applies them, and one FieldError per unknown name or bad load
version (with bounded "did you mean" hints)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, assert_never

from app.domain.redaction import redact_shapes
from app.domain.run_spec import NameKind, RunSpec
from app.errors import FieldError, InvalidRunRequest
from app.kedro_bridge.suggestions import Suggestions

if TYPE_CHECKING:
    from kedro.pipeline import Pipeline

    from app.kedro_bridge.resolved_catalog import ResolvedCatalog


def filter_pipeline(combined: Pipeline, spec: RunSpec) -> Pipeline:
    """``combined`` filtered as ``spec`` asks. Raises InvalidRunRequest (no node left)."""
    try:
        return combined.filter(**spec.pipeline_filters())
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
    """One FieldError per name a filter asks for that ``pipeline`` does not have, in the
    order the spec declares its filters (:meth:`RunSpec.named_entries`)."""
    known: dict[NameKind, set[str]] = {}
    errors = []
    for where, kind, name in spec.named_entries():
        if kind not in known:
            known[kind] = _names_of(kind, pipeline)
        if name not in known[kind]:
            errors.append(
                FieldError(
                    ("body", *where),
                    f"no {kind} named {name!r} in the selected pipelines"
                    f"{hint(suggestions.for_name(name, known[kind]))}",
                    f"unknown_{kind}",
                )
            )
    return errors


def _names_of(kind: NameKind, pipeline: Pipeline) -> set[str]:
    match kind:
        case NameKind.NODE:
            return {node.name for node in pipeline.nodes}
        case NameKind.TAG:
            return set().union(*(node.tags for node in pipeline.nodes))
        case NameKind.NAMESPACE:
            return {prefix for node in pipeline.nodes for prefix in _namespace_prefixes(node)}
        case NameKind.DATASET:
            return set(pipeline.datasets())
        case _:
            assert_never(kind)


def load_version_errors(
    spec: RunSpec, pipeline: Pipeline, catalog: ResolvedCatalog
) -> list[FieldError]:
    """One FieldError per version pinned for a dataset that is not versioned, or that is
    not one safe path component. Unknown datasets are :func:`unknown_names`' to report."""
    datasets = pipeline.datasets()
    errors = []
    for name, version in spec.load_versions.items():
        where = ("body", "load_versions", name)
        if name not in datasets:
            continue
        if not catalog.locate(name).versioned:
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

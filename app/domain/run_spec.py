"""What the caller asked to run, and the one declaration of the Kedro filters a run takes.

A filter is a :class:`RunSpec` field whose metadata holds a :class:`KedroFilter`: Kedro's
``session.run`` takes it under the field's name, ``Pipeline.filter`` under
``pipeline_keyword`` when it selects nodes there, and ``names`` says what its entries
must name in the selected pipelines. Everything else (the wire models' conversions, the
record, the unknown-name checks, the worker's ``session.run`` call) loops over the
fields, so a new filter is a new field here and in the wire models, nothing more.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import Field, dataclass, field, fields
from enum import StrEnum
from typing import Any

_FILTER = "kedro_filter"  # the metadata key of a filter field


class NameKind(StrEnum):
    """What a filter's entries name in the selected pipelines."""

    NODE = "node"
    TAG = "tag"
    NAMESPACE = "namespace"
    DATASET = "dataset"


@dataclass(frozen=True)
class KedroFilter:
    """How one :class:`RunSpec` field filters a Kedro run.

    ``names``: what each entry (each key, for a mapping) must name in the selected
    pipelines; None when its entries are not names. ``pipeline_keyword``: the keyword
    ``Pipeline.filter`` takes it under; None when only ``session.run`` applies it.
    """

    names: NameKind | None = None
    pipeline_keyword: str | None = None


def kedro_filter(
    names: NameKind | None = None, pipeline_keyword: str | None = None
) -> dict[str, KedroFilter]:
    """The field metadata that makes a :class:`RunSpec` field a filter."""
    return {_FILTER: KedroFilter(names, pipeline_keyword)}


@dataclass(frozen=True)
class RunSpec:
    """What the caller asked to run, as accepted. Kedro receives ``params`` as
    runtime_params and a runner built from ``runner`` and ``is_async``."""

    pipeline_names: tuple[str, ...] = ("__default__",)
    tags: tuple[str, ...] = field(default=(), metadata=kedro_filter(NameKind.TAG, "tags"))
    node_names: tuple[str, ...] = field(
        default=(), metadata=kedro_filter(NameKind.NODE, "node_names")
    )
    from_nodes: tuple[str, ...] = field(
        default=(), metadata=kedro_filter(NameKind.NODE, "from_nodes")
    )
    to_nodes: tuple[str, ...] = field(default=(), metadata=kedro_filter(NameKind.NODE, "to_nodes"))
    from_inputs: tuple[str, ...] = field(
        default=(), metadata=kedro_filter(NameKind.DATASET, "from_inputs")
    )
    to_outputs: tuple[str, ...] = field(
        default=(), metadata=kedro_filter(NameKind.DATASET, "to_outputs")
    )
    namespaces: tuple[str, ...] = field(
        default=(), metadata=kedro_filter(NameKind.NAMESPACE, "node_namespaces")
    )
    # Pins what the run loads and selects no node: Pipeline.filter never sees it.
    load_versions: dict[str, str] = field(
        default_factory=dict, metadata=kedro_filter(NameKind.DATASET)
    )
    only_missing_outputs: bool = field(default=False, metadata=kedro_filter())
    runner: str = "SequentialRunner"
    is_async: bool = False
    params: dict[str, Any] = field(default_factory=dict)
    timeout_seconds: float | None = None  # None: the server's default
    max_attempts: int = 1  # >1: a run lost with its worker or the service is retried

    def kedro_filters(self) -> dict[str, Any]:
        """Every filter as ``session.run`` takes it: lists and dicts, None for an empty one."""
        return {f.name: _for_kedro(getattr(self, f.name)) for f in filter_fields()}

    def pipeline_filters(self) -> dict[str, Any]:
        """The filters ``Pipeline.filter`` applies, under its keywords (None: no filter)."""
        return {
            declared.pipeline_keyword: _for_kedro(getattr(self, f.name))
            for f in filter_fields()
            if (declared := filter_of(f)).pipeline_keyword is not None
        }

    def named_entries(self) -> Iterator[tuple[tuple[str, int | str], NameKind, str]]:
        """Every name the filters ask for: its place in the request (field, and index or
        key), what it must name, and the name; in field order, then entry order."""
        for f in filter_fields():
            kind = filter_of(f).names
            if kind is None:
                continue
            value = getattr(self, f.name)
            if isinstance(value, Mapping):
                for key in value:
                    yield (f.name, key), kind, key
            else:
                for index, name in enumerate(value):
                    yield (f.name, index), kind, name

    def to_record(self) -> dict[str, Any]:
        """The spec as plain JSON-ready values keyed by field name (tuples as lists)."""
        return {f.name: _plain(getattr(self, f.name)) for f in fields(self)}

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> RunSpec:
        """The spec a record holds, as any version wrote it: a field it lacks (it
        predates the field) takes the default."""
        # A key no field has was written by a version that had the field: it is dropped
        # rather than making the stored run unreadable.
        names = {f.name for f in fields(cls)}
        return cls.from_values({key: value for key, value in record.items() if key in names})

    @classmethod
    def from_values(cls, values: Mapping[str, Any]) -> RunSpec:
        """A spec from plain values keyed by field name: lists become tuples, and a value
        that is None, an empty list or an empty dict takes the field's default. Raises
        TypeError for a key that names no field."""
        given = {
            key: _frozen(value)
            for key, value in values.items()
            if not (value is None or (isinstance(value, list | tuple | dict) and not value))
        }
        return cls(**given)


def filter_fields() -> tuple[Field[Any], ...]:
    """The fields of :class:`RunSpec` that are Kedro filters, in declaration order."""
    return tuple(f for f in fields(RunSpec) if _FILTER in f.metadata)


def filter_of(spec_field: Field[Any]) -> KedroFilter:
    """The filter declaration of a field of :func:`filter_fields`. Raises KeyError."""
    declared: KedroFilter = spec_field.metadata[_FILTER]
    return declared


def _for_kedro(value: Any) -> Any:
    if isinstance(value, tuple):
        return list(value) or None
    if isinstance(value, dict):
        return dict(value) or None
    return value


def _plain(value: Any) -> Any:
    if isinstance(value, tuple):
        return list(value)
    if isinstance(value, dict):
        return dict(value)
    return value


def _frozen(value: Any) -> Any:
    if isinstance(value, list | tuple):
        return tuple(value)
    if isinstance(value, dict):
        return dict(value)
    return value

"""The Kedro filters are declared once, on RunSpec's fields: the wire models, the OpenAPI
document, Kedro's ``session.run`` and ``Pipeline.filter``, the unknown-name checks and the
stored record all cover exactly the declared set. A filter added to the declaration and
not to the wire models (or the other way round) fails here; nothing else needs editing."""

from __future__ import annotations

import inspect
import json
import sqlite3
from dataclasses import Field, fields, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from kedro.framework.session import KedroServiceSession
from kedro.pipeline import Pipeline, node

from app.api.kedro_compat import as_run_create
from app.api.schemas import RunCreate, RunRequestOut, run_out
from app.domain.ports import RunAssignment
from app.domain.run_spec import NameKind, filter_fields, filter_of
from app.domain.runs import Footprint, Run, RunSpec, RunStatus
from app.domain.views import RunView
from app.kedro_bridge import selection
from app.kedro_bridge import server_models as kedro
from app.kedro_bridge.execution import session_run_arguments
from app.kedro_bridge.suggestions import Suggestions
from app.persistence.store import SqlRunStore

OPENAPI = Path(__file__).parents[1] / "openapi" / "openapi.json"

FILTERS = {f.name for f in filter_fields()}
SPEC_FIELDS = {f.name for f in fields(RunSpec)}
# What session.run takes beside the filters, each built by the worker from the spec.
RUN_ARGUMENTS = {"run_id", "pipeline_names", "runner", "runtime_params"}
# What Kedro's own /run body carries beside the filters.
KEDRO_BODY_EXTRAS = {"pipeline_names", "runner", "is_async", "params"}


def _first() -> None:
    return None


def _second(value: Any) -> Any:
    return value


# Real Kedro nodes: "ns.second" is namespaced, tagged, and reads and writes a dataset.
PIPELINE = Pipeline(
    [
        node(_first, None, "mid", name="first", tags=["prep"]),
        node(_second, "mid", "out", name="second", tags=["train"], namespace="ns"),
    ]
)
KNOWN = {
    NameKind.NODE: "ns.second",
    NameKind.TAG: "train",
    NameKind.NAMESPACE: "ns",
    NameKind.DATASET: "mid",
}


def _sample(spec_field: Field[Any], name: str | None = None) -> Any:
    """A value unlike the default for any filter, naming ``name`` or a known name."""
    kind = filter_of(spec_field).names
    entry = name or (KNOWN[kind] if kind else f"{spec_field.name}-entry")
    default = spec_field.default
    if default == ():
        return (entry,)
    if default is False:
        return True
    if spec_field.default_factory is dict:
        return {entry: "2026-01-01T00.00.00.000Z"}
    raise AssertionError(f"give the filter {spec_field.name!r} a sample value in _sample")


NOT_FILTERS: dict[str, Any] = {
    "pipeline_names": ("one", "two"),
    "runner": "ThreadRunner",
    "is_async": True,
    "params": {"model": {"lr": 0.1}},
    "timeout_seconds": 30.0,
    "max_attempts": 2,
}
EVERY_FIELD_SET = RunSpec(**{f.name: _sample(f) for f in filter_fields()}, **NOT_FILTERS)


def _as_kedro_takes(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value


def test_every_field_is_a_filter_or_named_here_and_set_unlike_its_default() -> None:
    assert FILTERS | set(NOT_FILTERS) == SPEC_FIELDS
    assert not FILTERS & set(NOT_FILTERS)
    for spec_field in fields(RunSpec):
        assert getattr(EVERY_FIELD_SET, spec_field.name) != getattr(RunSpec(), spec_field.name)


def test_the_requests_wire_models_have_every_field_and_convert_it() -> None:
    assert set(RunCreate.model_fields) == SPEC_FIELDS
    body = json.loads(json.dumps(EVERY_FIELD_SET.to_record()))
    assert RunCreate.model_validate(body).to_spec() == EVERY_FIELD_SET
    assert RunCreate.model_validate({}).to_spec() == RunSpec()


def test_the_echo_has_every_field_as_given() -> None:
    assert set(RunRequestOut.model_fields) == SPEC_FIELDS | {"params_masked"}
    run = Run(
        run_id="r",
        save_version="v",
        status=RunStatus.QUEUED,
        spec=EVERY_FIELD_SET,
        nodes=(),
        footprint=Footprint(),
        env=None,
        kedro_version="1.7",
        project_commit=None,
        queued_at=datetime(2026, 1, 1, tzinfo=UTC),
    )
    echoed = run_out(RunView(run, [], [])).request.model_dump()
    assert echoed.pop("params_masked") == []
    assert echoed == EVERY_FIELD_SET.to_record()


def test_kedros_run_body_has_every_filter_and_each_reaches_the_spec() -> None:
    assert set(kedro.RunRequest.model_fields) == FILTERS | KEDRO_BODY_EXTRAS
    record = EVERY_FIELD_SET.to_record()
    kedros = {name: record[name] for name in kedro.RunRequest.model_fields}
    assert as_run_create(kedro.RunRequest.model_validate(kedros)).to_spec() == (
        RunSpec.from_values(kedros)
    )


def test_the_openapi_document_lists_every_field() -> None:
    schemas = json.loads(OPENAPI.read_text(encoding="utf-8"))["components"]["schemas"]
    assert set(schemas["RunCreate"]["properties"]) == SPEC_FIELDS
    assert set(schemas["RunRequestOut"]["properties"]) == SPEC_FIELDS | {"params_masked"}
    assert set(schemas["RunRequest"]["properties"]) == FILTERS | KEDRO_BODY_EXTRAS


def test_session_run_gets_every_filter_and_nothing_it_does_not_take() -> None:
    signature = inspect.signature(KedroServiceSession.run)
    assert set(signature.parameters) - {"self"} == FILTERS | RUN_ARGUMENTS
    # ThreadRunner warns that it cannot load asynchronously.
    spec = replace(EVERY_FIELD_SET, is_async=False)
    arguments = session_run_arguments(RunAssignment("r", "v", spec))
    signature.bind(None, **arguments)
    assert set(arguments) == FILTERS | RUN_ARGUMENTS
    for name in FILTERS:
        assert arguments[name] == _as_kedro_takes(getattr(spec, name)), name


def test_an_unset_filter_is_what_session_run_has_when_not_given_it() -> None:
    defaults = inspect.signature(KedroServiceSession.run).parameters
    arguments = session_run_arguments(RunAssignment("r", "v", RunSpec()))
    assert {name: arguments[name] for name in FILTERS} == {
        name: defaults[name].default for name in FILTERS
    }


def test_pipeline_filter_gets_every_filter_that_selects_nodes() -> None:
    signature = inspect.signature(Pipeline.filter)
    keywords = {filter_of(f).pipeline_keyword: f.name for f in filter_fields()}
    keywords.pop(None, None)
    assert set(signature.parameters) - {"self"} == set(keywords)
    given = EVERY_FIELD_SET.pipeline_filters()
    signature.bind(PIPELINE, **given)
    assert given == {
        keyword: _as_kedro_takes(getattr(EVERY_FIELD_SET, name))
        for keyword, name in keywords.items()
    }
    assert selection.filter_pipeline(PIPELINE, RunSpec()).nodes == PIPELINE.nodes


def test_names_the_filters_know_are_not_unknown() -> None:
    assert selection.unknown_names(EVERY_FIELD_SET, PIPELINE, Suggestions()) == []


def test_every_naming_filter_reports_its_unknown_names_where_they_are() -> None:
    naming = [f for f in filter_fields() if filter_of(f).names is not None]
    spec = RunSpec(**{f.name: _sample(f, "missing") for f in naming})
    errors = selection.unknown_names(spec, PIPELINE, Suggestions())
    assert [(e.loc, e.type) for e in errors] == [
        (
            ("body", f.name, "missing" if f.default_factory is dict else 0),
            f"unknown_{filter_of(f).names}",
        )
        for f in naming
    ]


def test_a_spec_round_trips_through_its_record() -> None:
    for spec in (RunSpec(), EVERY_FIELD_SET):
        record = spec.to_record()
        assert set(record) == SPEC_FIELDS
        assert RunSpec.from_record(json.loads(json.dumps(record))) == spec


# What the code before the filters' declaration wrote (its to_record, field by field).
WRITTEN_BEFORE = (
    '{"pipeline_names": ["stages"], "tags": ["prep"], "node_names": [], "from_nodes": [], '
    '"to_nodes": [], "from_inputs": [], "to_outputs": ["out"], "namespaces": ["ns"], '
    '"load_versions": {"mid": "2026-01-01T00.00.00.000Z"}, "only_missing_outputs": true, '
    '"runner": "ThreadRunner", "is_async": false, "params": {"model": {"lr": 0.1}}, '
    '"timeout_seconds": 30.0, "max_attempts": 2}'
)
# The first store's (before timeout_seconds and max_attempts).
WRITTEN_FIRST = (
    '{"pipeline_names": ["stages"], "tags": ["prep"], "node_names": [], "from_nodes": [], '
    '"to_nodes": [], "from_inputs": [], "to_outputs": ["out"], "namespaces": ["ns"], '
    '"load_versions": {"mid": "2026-01-01T00.00.00.000Z"}, "only_missing_outputs": true, '
    '"runner": "ThreadRunner", "is_async": false, "params": {"model": {"lr": 0.1}}}'
)
READ_BACK = RunSpec(
    pipeline_names=("stages",),
    tags=("prep",),
    to_outputs=("out",),
    namespaces=("ns",),
    load_versions={"mid": "2026-01-01T00.00.00.000Z"},
    only_missing_outputs=True,
    runner="ThreadRunner",
    params={"model": {"lr": 0.1}},
    timeout_seconds=30.0,
    max_attempts=2,
)


def test_a_spec_is_recorded_as_before() -> None:
    before = json.loads(WRITTEN_BEFORE)
    record = READ_BACK.to_record()
    # A field added since only adds its key.
    assert {key: record[key] for key in before} == before


@pytest.mark.parametrize(
    ("written", "expected"),
    [
        (WRITTEN_BEFORE, READ_BACK),
        (WRITTEN_FIRST, replace(READ_BACK, timeout_seconds=None, max_attempts=1)),
    ],
    ids=["before-the-declaration", "first-store"],
)
def test_a_stored_spec_an_older_version_wrote_reads_back(
    tmp_path: Path, written: str, expected: RunSpec
) -> None:
    path = tmp_path / "state" / "runs.db"
    store = SqlRunStore(f"sqlite:///{path}")
    try:
        run = Run(
            run_id="old-run",
            save_version="2026-01-01T00.00.00.000Z",
            status=RunStatus.QUEUED,
            spec=RunSpec(),
            nodes=("ns.second",),
            footprint=Footprint(),
            env=None,
            kedro_version="1.7.0",
            project_commit=None,
            queued_at=datetime(2026, 1, 1, tzinfo=UTC),
        )
        store.insert_run(run)
        connection = sqlite3.connect(path)
        with connection:
            connection.execute("UPDATE runs SET spec = ? WHERE run_id = ?", (written, run.run_id))
        connection.close()
        stored = store.get_run(run.run_id)
    finally:
        store.close()
    assert stored is not None
    assert stored.spec == expected

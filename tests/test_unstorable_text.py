"""Text no database takes (lone surrogates, NUL) from inside a run: it is made storable
at the store, the run ends as it should, and nothing else is held up. On SQLite and on
PostgreSQL (which refuses NUL in text, where SQLite takes it).

The nodes are added to this test's own copy of the project, so the shared template
stays as it is.
"""

from __future__ import annotations

import signal
import subprocess
import textwrap
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest
from conftest import ServiceProcess
from sqlalchemy import create_engine, text
from sqlalchemy.exc import DataError

from app.domain.ports import AppendEvent, AppendLogs, IdempotencyKey, RecordOutputs, Transition
from app.domain.reports import LogLine
from app.domain.runs import EventType, FailureReason, Footprint, Run, RunError, RunSpec, RunStatus
from app.persistence.storable import storable, storable_json, storable_text
from app.persistence.store import SqlRunStore

ODD_NODES = '''
"""Nodes that log, return and raise text no database takes."""

import logging
import os

from kedro.pipeline import Pipeline, node

ODD = {"surrogate": os.fsdecode(b"\\xff"), "nul": "\\x00"}


def log_odd(kind: str) -> str:
    odd = ODD[kind]
    logging.getLogger("odd." + odd).warning("an odd line: [%s]", odd)
    return f"returned [{odd}]"


def raise_odd(kind: str) -> str:
    odd = ODD[kind]
    logging.getLogger(__name__).error("about to fail: [%s]", odd)
    raise ValueError(f"an odd failure: [{odd}]")


def odd_pipelines() -> dict[str, Pipeline]:
    return {
        "odd_log": Pipeline([node(log_odd, "params:odd_kind", "odd_out", name="log_odd")]),
        "odd_raise": Pipeline([node(raise_odd, "params:odd_kind", "odd_fail", name="raise_odd")]),
    }
'''

REGISTRY_TAIL = """

_registered_before_odd = register_pipelines


def register_pipelines() -> dict[str, Pipeline]:
    from kr_testproject.odd import odd_pipelines

    return {**_registered_before_odd(), **odd_pipelines()}
"""


def _add_odd_nodes(project: Path) -> None:
    package = project / "src" / "kr_testproject"
    (package / "odd.py").write_text(textwrap.dedent(ODD_NODES))
    with (package / "pipeline_registry.py").open("a") as registry:
        registry.write(REGISTRY_TAIL)
    with (project / "conf" / "base" / "parameters.yml").open("a") as parameters:
        parameters.write("odd_kind: surrogate\n")


def test_odd_text_from_a_run_is_stored_readable_and_holds_nothing_up(
    project: Path, store_url: str
) -> None:
    _add_odd_nodes(project)
    service = ServiceProcess(project, workers=1, extra_args=["--database", store_url]).start()
    try:
        runs = {
            (pipeline, kind): service.submit(pipeline_names=[pipeline], params={"odd_kind": kind})[
                "run_id"
            ]
            for pipeline in ("odd_log", "odd_raise")
            for kind in ("surrogate", "nul")
        }
        after = service.submit(pipeline_names=["noop"])["run_id"]  # queued behind them

        for (pipeline, kind), run_id in runs.items():
            run = service.wait(run_id, timeout=60)
            logs = service.client.get(f"/runs/{run_id}/logs").json()["items"]
            messages = [line["message"] for line in logs]
            if pipeline == "odd_log":
                assert run["status"] == "succeeded", (kind, run)
                assert "an odd line: [\ufffd]" in messages
                assert "odd.\ufffd" in {line["logger"] for line in logs}
                free = service.client.get(f"/runs/{run_id}/outputs").json()["free"]
                assert [output.get("value") for output in free] == ["returned [\ufffd]"]
            else:
                assert run["status"] == "failed", (kind, run)
                assert run["error"]["reason"] == "error"
                assert "an odd failure: [\ufffd]" in run["error"]["message"]
                assert "about to fail: [\ufffd]" in messages
                failed = [e for e in service.events(run_id) if e["type"] == "node_failed"]
                assert "an odd failure: [\ufffd]" in failed[0]["data"]["message"]
        assert service.wait(after)["status"] == "succeeded"

        assert service.process is not None
        service.process.send_signal(signal.SIGTERM)
        try:
            assert service.process.wait(timeout=30) == 0
        except subprocess.TimeoutExpired:
            pytest.fail("SIGTERM did not stop the service")
    finally:
        service.stop()


@pytest.mark.parametrize(
    ("text", "stored"),
    [
        ("plain", "plain"),
        ("caf\u00e9 \U0001f600", "caf\u00e9 \U0001f600"),  # a real astral character stays
        ("a\udcffb", "a\ufffdb"),
        ("\ud83d\ude00", "\ufffd\ufffd"),  # two lone surrogates are not a pair in a str
        ("nul\x00here", "nul\ufffdhere"),
    ],
)
def test_storable_text_replaces_only_what_no_store_takes(text: str, stored: str) -> None:
    assert storable_text(text) == stored
    stored.encode("utf-8")  # what every driver needs


def test_storable_json_reaches_keys_nested_values_and_other_objects() -> None:
    class Odd:
        def __str__(self) -> str:
            return "obj\udcff"

    value = {"k\x00": [{"v": "x\udcff"}, ("t\x00",), 1, None], "o": Odd()}
    assert storable(value) == {"k\ufffd": [{"v": "x\ufffd"}, ["t\ufffd"], 1, None], "o": value["o"]}
    text = storable_json(value)
    text.encode("utf-8")
    assert "\\u0000" not in text
    assert "\\udcff" not in text
    assert "obj\\ufffd" in text


ODD = "[\x00|\udcff]"
STORED = "[\ufffd|\ufffd]"


def test_every_text_the_store_writes_is_made_storable(store: SqlRunStore) -> None:
    at = datetime.now(UTC)
    run = Run(
        run_id=str(uuid.uuid4()),
        save_version="2026-01-01T00.00.00.000Z",
        status=RunStatus.QUEUED,
        spec=RunSpec(pipeline_names=(f"p{ODD}",), params={f"k{ODD}": [ODD]}),
        nodes=(f"n{ODD}",),
        footprint=Footprint(writes=frozenset({f"/out{ODD}"})),
        env=f"env{ODD}",
        kedro_version=f"1.7{ODD}",
        project_commit=f"c{ODD}",
        queued_at=at,
        owner=f"o{ODD}",
    )
    store.insert_run(run, key=IdempotencyKey(f"o{ODD}", f"key{ODD}", "0" * 64))
    error = RunError(FailureReason.ERROR, f"Type{ODD}", f"message{ODD}")
    line = LogLine(at, "INFO", f"logger{ODD}", f"n{ODD}", f"line{ODD}")
    applied = store.write(
        [
            Transition(run.run_id, RunStatus.RUNNING, at, EventType.RUN_STARTED),
            AppendEvent(run.run_id, EventType.NODE_STARTED, at, f"n{ODD}", {f"d{ODD}": ODD}),
            AppendLogs(run.run_id, (line,)),
            RecordOutputs(run.run_id, {"free": [{"value": ODD}]}),
            Transition(run.run_id, RunStatus.FAILED, at, EventType.RUN_FAILED, error=error),
        ]
    )
    assert applied == [True] * 5

    stored = store.get_run(run.run_id)
    assert stored is not None
    assert stored.spec.pipeline_names == (f"p{STORED}",)
    assert stored.spec.params == {f"k{STORED}": [STORED]}
    assert (stored.nodes, stored.footprint.writes) == ((f"n{STORED}",), {f"/out{STORED}"})
    assert (stored.env, stored.kedro_version, stored.project_commit, stored.owner) == (
        f"env{STORED}",
        f"1.7{STORED}",
        f"c{STORED}",
        f"o{STORED}",
    )
    assert stored.error == RunError(FailureReason.ERROR, f"Type{STORED}", f"message{STORED}")
    node_started = store.list_events(run.run_id, 0, 10)[2]
    assert (node_started.node, node_started.data) == (f"n{STORED}", {f"d{STORED}": STORED})
    [logged] = store.list_logs(run.run_id, 0, 0, 10)[0]
    assert (logged.line.logger, logged.line.node, logged.line.message) == (
        f"logger{STORED}",
        f"n{STORED}",
        f"line{STORED}",
    )
    assert store.get_outputs(run.run_id) == {"free": [{"value": STORED}]}
    # Keys and filters find what they name by the text the caller sends, as stored.
    assert store.find_key(f"o{ODD}", f"key{ODD}", at) == ("0" * 64, run.run_id)
    for pipeline, owner in [(f"p{ODD}", f"o{ODD}"), (f"p{STORED}", f"o{STORED}")]:
        found = store.list_runs([], pipeline, None, 10, owner=owner).runs
        assert [r.run_id for r in found] == [run.run_id]


def test_postgresql_itself_refuses_nul_in_text(postgres_url: str) -> None:
    """Why the store sanitises: without it, one NUL fails the whole transaction."""
    engine = create_engine(postgres_url)
    try:
        with engine.begin() as connection:
            connection.execute(text("CREATE TABLE t (value TEXT)"))
        with pytest.raises(DataError, match="cannot contain NUL"), engine.begin() as connection:
            connection.execute(text("INSERT INTO t VALUES (:value)"), {"value": "a\x00b"})
    finally:
        engine.dispose()

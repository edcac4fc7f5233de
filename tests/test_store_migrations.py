"""The run store's schema under Alembic, on SQLite and PostgreSQL: a migrated store is
exactly tables.py; a store made before Alembic (tests/fixtures/store_v8, dumped from
stores the hand-rolled migrations made) is stamped at the baseline with nothing lost,
also from an older step; replicas starting together migrate one database once; and
``kedro-runs db upgrade|current``."""

from __future__ import annotations

import contextlib
import sqlite3
import subprocess
import sys
import textwrap
import uuid
from dataclasses import replace
from pathlib import Path

import psycopg
import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from postgres import PostgresServer
from sqlalchemy import inspect, text
from sqlalchemy.engine import make_url

from app.domain.ports import AppendEvent
from app.domain.runs import EventType, RunStatus
from app.persistence.engine import open_engine, sqlite_file
from app.persistence.legacy import UnknownSchema
from app.persistence.migrations import alembic_config, head_revision, schema_state, upgrade
from app.persistence.store import SqlRunStore
from app.persistence.tables import metadata

FIXTURES = Path(__file__).parent / "fixtures" / "store_v8"
DONE, LOST, WAITING = (f"00000000-0000-4000-8000-00000000000{n}" for n in (1, 2, 3))


def _load_v8_store(url: str) -> None:
    """Make the empty database at ``url`` the v8 store of the fixture."""
    database = sqlite_file(url)
    if database is not None:
        database.parent.mkdir(parents=True, exist_ok=True)
        with contextlib.closing(sqlite3.connect(database)) as connection:
            connection.executescript((FIXTURES / "sqlite.sql").read_text())
        return
    conninfo = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(conninfo, autocommit=True) as connection:
        # No parameters: the simple protocol, which takes the dump's many statements.
        connection.execute((FIXTURES / "postgresql.sql").read_text().encode())


def _differences(url: str) -> list[object]:
    """What Alembic's autogenerate finds between tables.py and the store at ``url``."""
    engine = open_engine(url, writer=False)
    try:
        with engine.connect() as connection:
            return list(compare_metadata(MigrationContext.configure(connection), metadata))
    finally:
        engine.dispose()


def _execute(url: str, *statements: str) -> None:
    engine = open_engine(url, writer=True)
    try:
        with engine.begin() as connection:
            for statement in statements:
                connection.execute(text(statement))
    finally:
        engine.dispose()


def _tables(url: str) -> set[str]:
    engine = open_engine(url, writer=False)
    try:
        return set(inspect(engine).get_table_names())
    finally:
        engine.dispose()


def test_a_fresh_store_is_exactly_tables_py(store_url: str) -> None:
    SqlRunStore(store_url).close()
    assert _differences(store_url) == []
    engine = open_engine(store_url, writer=False)
    try:
        state = schema_state(engine)
    finally:
        engine.dispose()
    assert (state.revision, state.legacy, state.up_to_date) == (head_revision(), None, True)


def test_every_revision_downgrades_and_upgrades_again(store_url: str) -> None:
    SqlRunStore(store_url).close()
    engine = open_engine(store_url, writer=True)
    try:
        with engine.begin() as connection:
            command.downgrade(alembic_config(connection), "base")
        assert _tables(store_url) == {"alembic_version"}
        upgrade(engine)
    finally:
        engine.dispose()
    assert _differences(store_url) == []


def test_a_store_made_before_alembic_is_stamped_and_keeps_everything(store_url: str) -> None:
    _load_v8_store(store_url)
    engine = open_engine(store_url, writer=False)
    try:
        assert schema_state(engine).legacy == 8
    finally:
        engine.dispose()

    store = SqlRunStore(store_url)
    try:
        done, lost, waiting = (store.get_run(run_id) for run_id in (DONE, LOST, WAITING))
        assert done is not None
        assert lost is not None
        assert waiting is not None
        assert (done.status, done.owner, done.attempts) == (RunStatus.SUCCEEDED, "alice", 1)
        assert (lost.status, lost.attempts) == (RunStatus.QUEUED, 1)
        assert lost.current_save_version == "2026-11-01T12.00.05.000Z"
        assert waiting.status is RunStatus.QUEUED
        assert [event.seq for event in store.list_events(DONE, 0, 10)] == [1, 2, 3, 4, 5]
        assert [line.line.message for line in store.list_logs(DONE, 0, 0, 10)[0]] == ["hello"]
        assert store.get_outputs(DONE) == {"saved": [], "free": []}
        assert store.find_key("alice", "key-1", done.queued_at) == ("0" * 64, DONE)
        assert store.last_save_version() == "2026-11-01T12.00.05.000Z"
        # Event numbering goes on from the events stored (revision 0003's backfill).
        store.write([AppendEvent(LOST, EventType.NODE_STARTED, lost.queued_at, "n")])
        assert [event.seq for event in store.list_events(LOST, 0, 10)] == [1, 2, 3, 4]
        # Save versions go on after the newest one stored, a retry's (revision 0004's seed).
        new = replace(waiting, run_id=str(uuid.uuid4()), save_version="")
        assert store.insert_run(new).save_version == "2026-11-01T12.00.05.001Z"
    finally:
        store.close()
    assert "schema_version" not in _tables(store_url)
    assert _differences(store_url) == []


def test_a_store_at_an_older_step_is_brought_to_the_baseline_first(store_url: str) -> None:
    """Back to step 4, as a store of that release was: no owners, attempts or retention
    indexes; the old steps 5-8 add them, with the values those steps gave."""
    _load_v8_store(store_url)
    _execute(
        store_url,
        "DROP INDEX ix_runs_owner_save_version",
        "DROP INDEX ix_runs_finished_at",
        "DROP INDEX ix_idempotency_keys_created_at",
        "DROP INDEX ix_idempotency_keys_run_id",
        *(
            f"ALTER TABLE runs DROP COLUMN {column}"
            for column in ("owner", "attempts", "attempt_save_version", "acknowledged_attempts")
        ),
        "DELETE FROM schema_version WHERE version > 4",
    )
    store = SqlRunStore(store_url)
    try:
        runs = {run_id: store.get_run(run_id) for run_id in (DONE, LOST, WAITING)}
        owners = {run.owner for run in runs.values() if run is not None}
        assert owners == {"anonymous"}
        counted = {
            run_id: (run.attempts, run.acknowledged_attempts, run.attempt_save_version)
            for run_id, run in runs.items()
            if run is not None
        }
        # A run that ever started had one attempt; nothing knew of retries yet.
        assert counted == {DONE: (1, 1, None), LOST: (1, 1, None), WAITING: (0, 0, None)}
    finally:
        store.close()
    assert _differences(store_url) == []


def test_a_schema_version_this_release_does_not_know_is_refused(store_url: str) -> None:
    _load_v8_store(store_url)
    _execute(store_url, "INSERT INTO schema_version VALUES (9, '2026-12-01T00:00:00.000000Z')")
    with pytest.raises(UnknownSchema, match=r"has steps \[1, .*, 9\]: not a store"):
        SqlRunStore(store_url)


# One process of a replica: import everything, say so, start the store on "go", report.
REPLICA = textwrap.dedent(
    """
    import sys, traceback
    from app.persistence.store import SqlRunStore
    print("ready", flush=True)
    sys.stdin.readline()
    try:
        SqlRunStore(sys.argv[1], shared=True).close()  # replicas of a cluster
    except BaseException:
        traceback.print_exc()
        sys.exit(1)
    """
)


def _start_at_once(url: str, replicas: int) -> list[tuple[int, str]]:
    """Start ``replicas`` processes that open the store at ``url`` at the same moment;
    each one's exit status and error output."""
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", REPLICA, url],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(replicas)
    ]
    try:
        for process in processes:
            assert process.stdout is not None
            assert process.stdout.readline() == "ready\n"
        for process in processes:  # all imported and waiting: now
            assert process.stdin is not None
            process.stdin.write("go\n")
            process.stdin.flush()
        return [(process.wait(timeout=60), process.communicate()[1]) for process in processes]
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
                process.wait()


def test_replicas_starting_together_migrate_one_empty_database_once(
    postgres_server: PostgresServer,
) -> None:
    for _trial in range(3):
        with postgres_server.database() as url:
            outcomes = _start_at_once(url, replicas=4)
            assert outcomes == [(0, "")] * 4
            assert _differences(url) == []


def _db(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "app", "db", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_db_upgrade_is_a_deploy_step_and_db_current_says_where_a_store_is(
    store_url: str,
) -> None:
    target = ["--database", store_url]
    if sqlite_file(store_url) is None:  # an empty PostgreSQL database
        empty = _db("current", *target)
        assert (empty.returncode, "empty (no schema)" in empty.stdout) == (1, True)
    _load_v8_store(store_url)
    legacy = _db("current", *target)
    assert legacy.returncode == 1
    assert "made before Alembic (schema_version 8)" in legacy.stdout

    upgraded = _db("upgrade", *target)
    assert upgraded.returncode == 0, upgraded.stderr
    assert f"upgraded to revision {head_revision()} (head)" in upgraded.stdout
    again = _db("upgrade", *target)
    assert f"already at revision {head_revision()}" in again.stdout
    current = _db("current", *target)
    assert (current.returncode, current.stdout.strip().endswith("(head)")) == (0, True)


def test_db_upgrade_leaves_an_owned_sqlite_store_alone(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'runs.db'}"
    owner = SqlRunStore(url)
    try:
        refused = _db("upgrade", "--database", url)
        assert refused.returncode == 2
        assert "in use by another kedro-runs process" in refused.stderr
    finally:
        owner.close()
    missing = _db("current", "--database", f"sqlite:///{tmp_path / 'typo.db'}")
    assert (missing.returncode, "no run store at" in missing.stderr) == (2, True)
    assert not (tmp_path / "typo.db").exists()

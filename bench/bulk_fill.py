"""A run store filled with many finished runs by direct SQL, for the history benchmark.

``fill_store`` copies one real run (the newest succeeded one, as the service recorded it)
into every table that rows of a run live in (``runs``, ``run_pipelines``, ``run_events``,
``run_logs``, ``state_changes``), under new run ids, so the copies weigh what a real run
weighs. The copies are older than every run already stored, each with its own save
version in Kedro's format (``spacing_ms`` apart, strictly increasing with time) and its
timestamps shifted with it; the state-change feed is renumbered so ids still follow time
(copies first), and ``service_clock`` stays ahead of every save version and change id.

The service must be stopped while a store is filled (it numbers from ``service_clock``).
SQLite takes the rows with ``executemany``, PostgreSQL with ``COPY``.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, Table, create_engine, func, select, text, update
from sqlalchemy.pool import NullPool

from app.domain.save_versions import format_save_version, parse_save_version
from app.persistence.engine import sqlite_file
from app.persistence.tables import UtcTimestamp, metadata, runs, service_clock, state_changes

# Every table holding rows of one run; runs first (the others' foreign keys point at it).
RUN_TABLES: tuple[Table, ...] = tuple(t for t in metadata.sorted_tables if "run_id" in t.c)
CHUNK_RUNS = 5_000  # runs per transaction: bounded memory, and a bounded SQLite WAL


@dataclass(frozen=True)
class FillResult:
    inserted: int
    seconds: float


def engine_for(url: str) -> Engine:
    """A plain engine on the store (no pool: the benchmark's few queries are one-offs)."""
    return create_engine(url, poolclass=NullPool)


def count_runs(url: str) -> int:
    engine = engine_for(url)
    try:
        with engine.connect() as connection:
            return int(connection.execute(select(func.count()).select_from(runs)).scalar_one())
    finally:
        engine.dispose()


def page_cursor(url: str, position: int) -> str | None:
    """The save version of the run at ``position`` (0 = the newest): as a cursor, the
    page after it starts at ``position + 1``. None beyond the last run."""
    engine = engine_for(url)
    query = select(runs.c.save_version).order_by(runs.c.save_version.desc())
    try:
        with engine.connect() as connection:
            found = connection.execute(query.offset(position).limit(1)).scalar_one_or_none()
    finally:
        engine.dispose()
    return None if found is None else str(found)


def store_bytes(url: str) -> int:
    """What the store takes on disk: the SQLite file and its WAL, or the size of the
    PostgreSQL database."""
    database = sqlite_file(url)
    if database is not None:
        wal = Path(f"{database}-wal")
        return database.stat().st_size + (wal.stat().st_size if wal.exists() else 0)
    engine = engine_for(url)
    try:
        with engine.connect() as connection:
            size = connection.execute(text("SELECT pg_database_size(current_database())"))
            return int(size.scalar_one())
    finally:
        engine.dispose()


def fill_store(url: str, total_runs: int, spacing_ms: int = 500) -> FillResult:
    """Add copies of the newest succeeded run until the store holds ``total_runs`` runs.
    Raises LookupError when there is no succeeded run to copy."""
    began = time.monotonic()
    engine = engine_for(url)
    try:
        template, existing, oldest = _read_template(engine)
        count = max(total_runs - existing, 0)
        if count:
            newest = parse_save_version(oldest) - timedelta(seconds=1)
            cloner = _Cloner(template, engine, newest, count, spacing_ms)
            _write(engine, cloner)
            _settle_counters(engine, cloner)
        _tidy(engine)
    finally:
        engine.dispose()
    return FillResult(count, time.monotonic() - began)


Template = dict[Table, list[dict[str, Any]]]


def _read_template(engine: Engine) -> tuple[Template, int, str]:
    """The newest succeeded run's rows by table, how many runs there are, and the oldest
    save version."""
    with engine.connect() as connection:
        run_id = connection.execute(
            select(runs.c.run_id)
            .where(runs.c.status == "succeeded")
            .order_by(runs.c.save_version.desc())
            .limit(1)
        ).scalar_one_or_none()
        if run_id is None:
            raise LookupError("the store has no succeeded run to copy")
        template = {
            table: [
                dict(row._mapping)
                for row in connection.execute(
                    select(table)
                    .where(table.c.run_id == run_id)
                    .order_by(*table.primary_key.columns)
                )
            ]
            for table in RUN_TABLES
        }
        existing = connection.execute(select(func.count()).select_from(runs)).scalar_one()
        oldest = connection.execute(select(func.min(runs.c.save_version))).scalar_one()
    return template, int(existing), str(oldest)


class _Cloner:
    """Rows of the copies, oldest first, as the database stores them (timestamps as
    text): the template row with run id, save version, times and texts that name the
    template's run id or save version replaced, and new state-change ids from 1."""

    def __init__(
        self, template: Template, engine: Engine, newest: datetime, count: int, spacing_ms: int
    ) -> None:
        self.count = count
        self.changes = len(template[state_changes]) * count
        (run,) = template[runs]
        self._template = template
        self._dialect = engine.dialect
        self._names = {str(run["run_id"]): "run_id", str(run["save_version"]): "save_version"}
        self._base = parse_save_version(str(run["save_version"]))
        self._newest = newest
        self._spacing = timedelta(milliseconds=spacing_ms)
        self._next_change = 1

    def chunks(self) -> Iterator[dict[Table, list[tuple[Any, ...]]]]:
        """The copies' rows by table, ``CHUNK_RUNS`` runs at a time."""
        makers = {
            table: [self._maker(table, row) for row in rows]
            for table, rows in self._template.items()
        }
        for start in range(0, self.count, CHUNK_RUNS):
            chunk: dict[Table, list[tuple[Any, ...]]] = {table: [] for table in makers}
            for age in range(min(CHUNK_RUNS, self.count - start)):
                moment = self._newest - (self.count - 1 - start - age) * self._spacing
                names = {"run_id": str(uuid.uuid4()), "save_version": format_save_version(moment)}
                shift = moment - self._base
                for table, table_makers in makers.items():
                    chunk[table].extend(make(names, shift) for make in table_makers)
            yield chunk

    def _maker(
        self, table: Table, row: dict[str, Any]
    ) -> Callable[[dict[str, str], timedelta], tuple[Any, ...]]:
        """What makes one copy of ``row``: constants stay, the rest is computed per run."""
        constant: list[Any] = []
        varying: list[tuple[int, Callable[[dict[str, str], timedelta], Any]]] = []
        for index, column in enumerate(table.c):
            value = row[column.key]
            constant.append(self._stored(column.type, value))
            compute = self._varying(table, column.key, column.type, value)
            if compute is not None:
                varying.append((index, compute))

        def make(names: dict[str, str], shift: timedelta) -> tuple[Any, ...]:
            values = list(constant)
            for index, compute in varying:
                values[index] = compute(names, shift)
            return tuple(values)

        return make

    def _varying(
        self, table: Table, name: str, kind: Any, value: Any
    ) -> Callable[[dict[str, str], timedelta], Any] | None:
        if table is state_changes and name == "id":
            return lambda _names, _shift: self._change_id()
        if isinstance(kind, UtcTimestamp) and value is not None:
            return lambda _names, shift: kind.process_bind_param(value + shift, self._dialect)
        if isinstance(value, str) and (named := [n for n in self._names if n in value]):
            return lambda names, _shift: _substituted(value, named, self._names, names)
        return None

    def _stored(self, kind: Any, value: Any) -> Any:
        if isinstance(kind, UtcTimestamp):
            return kind.process_bind_param(value, self._dialect)
        return value

    def _change_id(self) -> int:
        issued = self._next_change
        self._next_change += 1
        return issued


def _substituted(
    value: str, named: Sequence[str], roles: dict[str, str], names: dict[str, str]
) -> str:
    for old in named:
        value = value.replace(old, names[roles[old]])
    return value


def _write(engine: Engine, cloner: _Cloner) -> None:
    """The copies, chunk by chunk, one transaction each; the stored state changes move up
    first, so the copies' ids (from 1) are free."""
    connection = engine.raw_connection()
    try:
        cursor = connection.cursor()
        shift = cloner.changes
        cursor.execute(f"UPDATE state_changes SET id = id + {shift:d}")  # int: no injection
        connection.commit()
        postgres = engine.dialect.name == "postgresql"
        for chunk in cloner.chunks():
            for table, rows in chunk.items():
                if not rows:
                    continue
                columns = list(table.c.keys())
                if postgres:
                    statement = f"COPY {table.name} ({', '.join(columns)}) FROM STDIN"
                    with cursor.copy(statement) as copy:
                        for row in rows:
                            copy.write_row(row)
                else:
                    marks = ", ".join("?" for _ in columns)
                    cursor.executemany(
                        f"INSERT INTO {table.name} ({', '.join(columns)}) VALUES ({marks})", rows
                    )
            connection.commit()
        cursor.close()
    finally:
        connection.close()


def _settle_counters(engine: Engine, cloner: _Cloner) -> None:
    """``service_clock``: the next change id follows the moved feed, and the next save
    version comes after every stored one (the copies are older than the runs that were
    there, so that part changes nothing unless the row was behind)."""
    with engine.begin() as connection:
        newest = connection.execute(select(func.max(runs.c.save_version))).scalar_one()
        newest_ms = int(parse_save_version(str(newest)).timestamp() * 1000)
        last_ms = connection.execute(
            select(service_clock.c.last_ms).where(service_clock.c.id == 1)
        ).scalar_one()
        connection.execute(
            update(service_clock)
            .where(service_clock.c.id == 1)
            .values(
                last_change_id=service_clock.c.last_change_id + cloner.changes,
                last_ms=max(int(last_ms), newest_ms),
            )
        )


def _tidy(engine: Engine) -> None:
    """SQLite: fold the WAL into the file (so its size counts once). PostgreSQL: VACUUM
    ANALYZE the run tables, as autovacuum would have done long before a store grew to
    this size by itself (fresh statistics, an up-to-date visibility map)."""
    if engine.dialect.name == "sqlite":
        with engine.connect() as connection:
            connection.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
        return
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        for table in RUN_TABLES:
            connection.exec_driver_sql(f"VACUUM ANALYZE {table.name}")

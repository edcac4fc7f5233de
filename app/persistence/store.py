"""SqlRunStore: the RunStore port over SQLAlchemy 2 Core."""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import and_, func, select

from app.domain.ports import IdempotencyKey, RunPage, StoredLogLine, StoreWrite
from app.domain.reports import LogLine
from app.domain.retention import PruneCounts
from app.domain.runs import EventType, Run, RunEvent, RunStatus
from app.domain.signals import StateChange
from app.persistence import inserts, pruning
from app.persistence.cluster import SqlClusterStore, send_notices
from app.persistence.engine import is_sqlite, open_engine
from app.persistence.failures import unavailable_is_retry_later
from app.persistence.migrations import upgrade
from app.persistence.ownership import take_ownership
from app.persistence.rows import run_from_row
from app.persistence.storable import storable_text
from app.persistence.tables import (
    idempotency_keys,
    run_events,
    run_logs,
    run_pipelines,
    runs,
    service_clock,
    state_changes,
)
from app.persistence.writes import apply_writes


@unavailable_is_retry_later
class SqlRunStore:
    """Runs and their events in a SQL database. See ``app.domain.ports.RunStore``."""

    def __init__(self, url: str, *, shared: bool = False) -> None:
        """Open the store at ``url`` and bring its schema up to date, owning the store
        alone, or with ``shared`` (cluster mode; PostgreSQL only) sharing it with other
        replicas and with no service in embedded mode (``ownership``). Raises StoreInUse
        if it is taken, and whatever the migration raises (nothing stays open then)."""
        self._shared = shared  # cluster mode: other replicas hear of every write
        with contextlib.ExitStack() as opened:
            give_up = take_ownership(url, shared=shared)
            if give_up is not None:
                opened.callback(give_up)  # last, once every other connection is closed
            self._writer = open_engine(url, writer=True)
            opened.callback(self._writer.dispose)
            # SQLite's readers need engines of their own so they never wait for the one
            # writer; PostgreSQL serves both from one pool.
            self._reader = self._writer
            if is_sqlite(self._writer):
                self._reader = open_engine(url, writer=False)
                opened.callback(self._reader.dispose)
            upgrade(self._writer)
            self._opened = opened.pop_all()

    def cluster(self) -> SqlClusterStore:
        """The cluster's part of the store (``shared`` mode, PostgreSQL)."""
        return SqlClusterStore(self._writer)

    def close(self) -> None:
        """Close every connection, then give up ownership."""
        self._opened.close()

    # -- writes ---------------------------------------------------------------

    def insert_run(
        self,
        run: Run,
        then: Sequence[StoreWrite] = (),
        key: IdempotencyKey | None = None,
        key_live_since: datetime | None = None,
    ) -> Run:
        with self._writer.begin() as connection:
            stored = inserts.insert_run(connection, run, then, key, key_live_since)
            if self._shared:
                send_notices(connection, then, queued=stored.run_id)
            return stored

    def find_key(self, principal: str, key: str, since: datetime) -> tuple[str, str] | None:
        query = select(idempotency_keys.c.body_hash, idempotency_keys.c.run_id).where(
            and_(
                # As written by insert_run, so a key finds itself.
                idempotency_keys.c.principal == storable_text(principal),
                idempotency_keys.c.key == storable_text(key),
                idempotency_keys.c.created_at >= since,
            )
        )
        with self._reader.connect() as connection:
            row = connection.execute(query).first()
        return (row.body_hash, row.run_id) if row else None

    def write(self, writes: Sequence[StoreWrite]) -> list[bool]:
        with self._writer.begin() as connection:
            applied = apply_writes(connection, writes)
            if self._shared:
                done = zip(writes, applied, strict=True)
                send_notices(connection, [write for write, ok in done if ok])
            return applied

    # -- retention (see app.domain.retention.RunPruner) -----------------------

    def prune_batch(
        self, finished_before: datetime | None, keys_before: datetime, limit: int
    ) -> PruneCounts:
        return pruning.prune_batch(self._writer, finished_before, keys_before, limit)

    def count_prunable(
        self, finished_before: datetime | None, keys_before: datetime
    ) -> PruneCounts:
        return pruning.count_prunable(self._reader, finished_before, keys_before)

    # -- reads ----------------------------------------------------------------

    def get_run(self, run_id: str) -> Run | None:
        with self._reader.connect() as connection:
            row = connection.execute(select(runs).where(runs.c.run_id == run_id)).first()
        return run_from_row(row) if row else None

    def find_run_by_save_version(self, save_version: str) -> Run | None:
        """The run given ``save_version`` for its first attempt or its latest one."""
        with self._reader.connect() as connection:
            for column in (runs.c.save_version, runs.c.attempt_save_version):  # indexed first
                row = connection.execute(select(runs).where(column == save_version)).first()
                if row is not None:
                    return run_from_row(row)
        return None

    def list_runs(
        self,
        statuses: Sequence[RunStatus],
        pipeline: str | None,
        before: str | None,
        limit: int,
        owner: str | None = None,
    ) -> RunPage:
        query = select(runs).order_by(runs.c.save_version.desc()).limit(limit + 1)
        # Filters compare with text as the store wrote it (and a driver takes).
        if owner is not None:
            query = query.where(runs.c.owner == storable_text(owner))
        if statuses:
            query = query.where(runs.c.status.in_([str(status) for status in statuses]))
        if pipeline is not None:
            query = query.where(
                runs.c.run_id.in_(
                    select(run_pipelines.c.run_id).where(
                        run_pipelines.c.pipeline_name == storable_text(pipeline)
                    )
                )
            )
        if before is not None:
            query = query.where(runs.c.save_version < before)
        with self._reader.connect() as connection:
            rows = connection.execute(query).all()
        page = [run_from_row(row) for row in rows[:limit]]
        next_cursor = page[-1].save_version if len(rows) > limit else None
        return RunPage(page, next_cursor)

    def list_events(self, run_id: str, after: int, limit: int) -> list[RunEvent]:
        query = (
            select(run_events)
            .where(and_(run_events.c.run_id == run_id, run_events.c.seq > after))
            .order_by(run_events.c.seq)
            .limit(limit)
        )
        with self._reader.connect() as connection:
            rows = connection.execute(query).all()
        return [
            RunEvent(
                row.run_id, row.seq, EventType(row.type), row.at, row.node, json.loads(row.data)
            )
            for row in rows
        ]

    def list_logs(
        self, run_id: str, after: int, min_level: int, limit: int
    ) -> tuple[list[StoredLogLine], int]:
        query = (
            select(run_logs)
            .where(
                and_(
                    run_logs.c.run_id == run_id,
                    run_logs.c.seq > after,
                    run_logs.c.level >= min_level,
                )
            )
            .order_by(run_logs.c.seq)
            .limit(limit)
        )
        with self._reader.connect() as connection:
            rows = connection.execute(query).all()
            dropped = connection.scalar(select(runs.c.logs_dropped).where(runs.c.run_id == run_id))
        lines = [
            StoredLogLine(
                row.seq,
                LogLine(row.at, logging.getLevelName(row.level), row.logger, row.node, row.message),
            )
            for row in rows
        ]
        return lines, int(dropped or 0)

    def get_outputs(self, run_id: str) -> dict[str, object] | None:
        with self._reader.connect() as connection:
            text = connection.scalar(select(runs.c.outputs).where(runs.c.run_id == run_id))
        return dict(json.loads(text)) if text else None

    def runs_in(self, statuses: Sequence[RunStatus]) -> list[Run]:
        query = (
            select(runs)
            .where(runs.c.status.in_([str(status) for status in statuses]))
            .order_by(runs.c.save_version)
        )
        with self._reader.connect() as connection:
            return [run_from_row(row) for row in connection.execute(query)]

    def changes_after(
        self, after_id: int, limit: int, owner: str | None = None
    ) -> list[StateChange]:
        query = (
            select(state_changes)
            .where(state_changes.c.id > after_id)
            .order_by(state_changes.c.id)
            .limit(limit)
        )
        if owner is not None:
            query = query.where(state_changes.c.owner == storable_text(owner))
        with self._reader.connect() as connection:
            rows = connection.execute(query).all()
        return [StateChange(row.id, row.run_id, row.status, row.at, row.owner) for row in rows]

    def last_change_id(self) -> int:
        with self._reader.connect() as connection:
            return int(connection.scalar(select(service_clock.c.last_change_id)) or 0)

    def last_save_version(self) -> str | None:
        with self._reader.connect() as connection:
            first = connection.scalar(select(func.max(runs.c.save_version)))
            retried = connection.scalar(select(func.max(runs.c.attempt_save_version)))
        issued = [str(version) for version in (first, retried) if version is not None]
        return max(issued) if issued else None

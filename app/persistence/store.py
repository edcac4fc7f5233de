"""SqlRunStore: the RunStore port over SQLAlchemy 2 Core."""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Row, and_, delete, func, select, update
from sqlalchemy.exc import OperationalError

from app.domain.ports import (
    AcknowledgeAttempt,
    AppendEvent,
    AppendLogs,
    IdempotencyKey,
    RecordOutputs,
    RunPage,
    StoredLogLine,
    StoreWrite,
    Transition,
)
from app.domain.reports import LogLine
from app.domain.retention import PruneCounts
from app.domain.runs import (
    TERMINAL_STATUSES,
    EventType,
    FailureReason,
    Footprint,
    Run,
    RunError,
    RunEvent,
    RunSpec,
    RunStatus,
    sources_of,
)
from app.errors import ServiceUnavailable, StorageFull
from app.persistence import pruning
from app.persistence.engine import is_storage_full, lock_sqlite_store, open_engine
from app.persistence.migrations import migrate
from app.persistence.storable import storable_json, storable_optional, storable_text
from app.persistence.tables import idempotency_keys, run_events, run_logs, run_pipelines, runs

STORAGE_FULL_RETRY_SECONDS = 30

_TERMINAL_EVENTS = frozenset(
    {EventType.RUN_SUCCEEDED, EventType.RUN_FAILED, EventType.RUN_CANCELLED}
)


class SqlRunStore:
    """Runs and their events in a SQL database. See ``app.domain.ports.RunStore``."""

    def __init__(self, url: str) -> None:
        self._lock_file = lock_sqlite_store(url)
        self._writer = open_engine(url, writer=True)
        self._reader = open_engine(url, writer=False)
        migrate(self._writer)
        # The last event seq of each run written through this store. Writes come
        # from one thread at a time, so this is exact; a run not seen yet is read
        # from the table once.
        self._last_seq: dict[str, int] = {}

    def close(self) -> None:
        self._writer.dispose()
        self._reader.dispose()
        if self._lock_file is not None:
            self._lock_file.close()  # releases the lock

    # -- writes ---------------------------------------------------------------

    def insert_run(
        self, run: Run, then: Sequence[StoreWrite] = (), key: IdempotencyKey | None = None
    ) -> None:
        seqs_before = dict(self._last_seq)
        self._last_seq[run.run_id] = 0  # a new run has no events yet
        try:
            self._insert_run(run, then, key)
        except BaseException as error:
            self._last_seq = seqs_before
            _raise_retry_later(error)
            raise

    def _insert_run(self, run: Run, then: Sequence[StoreWrite], key: IdempotencyKey | None) -> None:
        with self._writer.begin() as connection:
            connection.execute(runs.insert().values(_run_values(run)))
            connection.execute(
                run_pipelines.insert(),
                [
                    {"run_id": run.run_id, "pipeline_name": name}
                    for name in dict.fromkeys(map(storable_text, run.spec.pipeline_names))
                ],
            )
            self._append_event(
                connection, AppendEvent(run.run_id, EventType.RUN_QUEUED, run.queued_at)
            )
            for write in then:
                self._apply(connection, write)
            if key is not None:
                principal, text = storable_text(key.principal), storable_text(key.key)
                match = and_(
                    idempotency_keys.c.principal == principal, idempotency_keys.c.key == text
                )
                connection.execute(delete(idempotency_keys).where(match))  # an expired one
                connection.execute(
                    idempotency_keys.insert().values(
                        principal=principal,
                        key=text,
                        body_hash=storable_text(key.body_hash),
                        run_id=run.run_id,
                        created_at=run.queued_at,
                    )
                )

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
        seqs_before = dict(self._last_seq)
        try:
            with self._writer.begin() as connection:
                return [self._apply(connection, write) for write in writes]
        except BaseException as error:
            self._last_seq = seqs_before  # rolled back: so are the seqs it handed out
            _raise_retry_later(error)
            raise

    # -- retention (see app.domain.retention.RunPruner) -----------------------

    def prune_batch(
        self, finished_before: datetime | None, keys_before: datetime, limit: int
    ) -> PruneCounts:
        try:
            return pruning.prune_batch(self._writer, finished_before, keys_before, limit)
        except BaseException as error:
            _raise_retry_later(error)
            raise

    def count_prunable(
        self, finished_before: datetime | None, keys_before: datetime
    ) -> PruneCounts:
        return pruning.count_prunable(self._reader, finished_before, keys_before)

    # -- reads ----------------------------------------------------------------

    def get_run(self, run_id: str) -> Run | None:
        with self._reader.connect() as connection:
            row = connection.execute(select(runs).where(runs.c.run_id == run_id)).first()
        return _run_from_row(row) if row else None

    def find_run_by_save_version(self, save_version: str) -> Run | None:
        """The run given ``save_version`` for its first attempt or its latest one."""
        with self._reader.connect() as connection:
            for column in (runs.c.save_version, runs.c.attempt_save_version):  # indexed first
                row = connection.execute(select(runs).where(column == save_version)).first()
                if row is not None:
                    return _run_from_row(row)
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
        if owner is not None:
            query = query.where(runs.c.owner == owner)
        if statuses:
            query = query.where(runs.c.status.in_([str(status) for status in statuses]))
        if pipeline is not None:
            query = query.where(
                runs.c.run_id.in_(
                    select(run_pipelines.c.run_id).where(run_pipelines.c.pipeline_name == pipeline)
                )
            )
        if before is not None:
            query = query.where(runs.c.save_version < before)
        with self._reader.connect() as connection:
            rows = connection.execute(query).all()
        page = [_run_from_row(row) for row in rows[:limit]]
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
            return [_run_from_row(row) for row in connection.execute(query)]

    def last_save_version(self) -> str | None:
        with self._reader.connect() as connection:
            first = connection.scalar(select(func.max(runs.c.save_version)))
            retried = connection.scalar(select(func.max(runs.c.attempt_save_version)))
        issued = [str(version) for version in (first, retried) if version is not None]
        return max(issued) if issued else None

    def _apply(self, connection: Connection, write: StoreWrite) -> bool:
        if isinstance(write, AppendEvent):
            self._append_event(connection, write)
            return True
        if isinstance(write, AppendLogs):
            _append_logs(connection, write)
            return True
        if isinstance(write, AcknowledgeAttempt):
            active = [str(RunStatus.RUNNING), str(RunStatus.CANCELLING)]
            result = connection.execute(
                update(runs)
                .where(and_(runs.c.run_id == write.run_id, runs.c.status.in_(active)))
                .values(acknowledged_attempts=runs.c.attempts)
            )
            return bool(result.rowcount == 1)
        if isinstance(write, RecordOutputs):
            connection.execute(
                update(runs)
                .where(runs.c.run_id == write.run_id)
                .values(outputs=storable_json(write.outputs))
            )
            return True
        if not _transition(connection, write):
            return False
        self._append_event(
            connection, AppendEvent(write.run_id, write.event, write.at, None, write.event_data)
        )
        return True

    def _append_event(self, connection: Connection, event: AppendEvent) -> None:
        last = self._last_seq.get(event.run_id)
        if last is None:
            last = int(
                connection.scalar(
                    select(func.coalesce(func.max(run_events.c.seq), 0)).where(
                        run_events.c.run_id == event.run_id
                    )
                )
                or 0
            )
        connection.execute(
            run_events.insert().values(
                run_id=event.run_id,
                seq=last + 1,
                type=str(event.type),
                at=event.at,
                node=storable_optional(event.node),
                data=storable_json(event.data),
            )
        )
        self._last_seq[event.run_id] = last + 1
        if event.type in _TERMINAL_EVENTS:
            self._last_seq.pop(event.run_id, None)  # nothing follows a terminal event


def _raise_retry_later(error: BaseException) -> None:
    """The transaction rolled back. What may pass by itself is told to the caller as
    ServiceUnavailable: a full disk (StorageFull), and a store that is locked past the
    busy timeout or unreachable (OperationalError: the database, not the data written)."""
    if is_storage_full(error):
        raise StorageFull(
            "The run store's disk is full; nothing was stored. Retry later.",
            retry_after_seconds=STORAGE_FULL_RETRY_SECONDS,
        ) from error
    if isinstance(error, OperationalError):
        raise ServiceUnavailable(
            "The run store is unavailable; nothing was stored. Retry later.",
            retry_after_seconds=STORAGE_FULL_RETRY_SECONDS,
        ) from error


def _append_logs(connection: Connection, logs: AppendLogs) -> None:
    if logs.lines:
        last = connection.scalar(
            select(func.coalesce(func.max(run_logs.c.seq), 0)).where(
                run_logs.c.run_id == logs.run_id
            )
        )
        connection.execute(
            run_logs.insert(),
            [
                {
                    "run_id": logs.run_id,
                    "seq": int(last or 0) + index,
                    "at": line.at,
                    "level": logging.getLevelName(line.level)
                    if isinstance(logging.getLevelName(line.level), int)
                    else logging.INFO,
                    "logger": storable_text(line.logger[:255]),
                    "node": storable_optional(line.node),
                    "message": storable_text(line.message),
                }
                for index, line in enumerate(logs.lines, start=1)
            ],
        )
    if logs.dropped:
        connection.execute(
            update(runs)
            .where(runs.c.run_id == logs.run_id)
            .values(logs_dropped=runs.c.logs_dropped + logs.dropped)
        )


def _transition(connection: Connection, move: Transition) -> bool:
    values: dict[str, Any] = {"status": str(move.target)}
    if move.target is RunStatus.RUNNING:
        values["started_at"] = move.at
        values["attempts"] = runs.c.attempts + 1
    elif move.target is RunStatus.QUEUED:
        values["attempt_save_version"] = move.save_version
        if move.attempt_given_back:
            values["attempts"] = runs.c.attempts - 1
    elif move.target is RunStatus.CANCELLING:
        values["cancel_requested_at"] = move.at
    elif move.target in TERMINAL_STATUSES:
        values["finished_at"] = move.at
    if move.error is not None:
        values.update(
            failure_reason=str(move.error.reason),
            error_type=storable_text(move.error.type),
            error_message=storable_text(move.error.message),
        )
    # Conditional: only from a state the transition table allows, so two writers
    # cannot both move the same run, and a terminal run never changes.
    allowed = [str(status) for status in sources_of(move.target)]
    result = connection.execute(
        update(runs)
        .where(and_(runs.c.run_id == move.run_id, runs.c.status.in_(allowed)))
        .values(values)
    )
    return result.rowcount == 1


def _run_values(run: Run) -> dict[str, Any]:
    return {
        "run_id": run.run_id,
        "save_version": run.save_version,
        "status": str(run.status),
        "spec": storable_json(run.spec.to_record()),
        "nodes": storable_json(list(run.nodes)),
        "footprint": storable_json(run.footprint.to_record()),
        "env": storable_optional(run.env),
        "kedro_version": storable_text(run.kedro_version),
        "project_commit": storable_optional(run.project_commit),
        "queued_at": run.queued_at,
        "owner": storable_text(run.owner),
    }


def _run_from_row(row: Row[Any]) -> Run:
    error = None
    if row.failure_reason is not None:
        error = RunError(
            FailureReason(row.failure_reason), row.error_type or "", row.error_message or ""
        )
    return Run(
        run_id=row.run_id,
        save_version=row.save_version,
        status=RunStatus(row.status),
        spec=RunSpec.from_record(json.loads(row.spec)),
        nodes=tuple(json.loads(row.nodes)),
        footprint=Footprint.from_record(json.loads(row.footprint)),
        env=row.env,
        kedro_version=row.kedro_version,
        project_commit=row.project_commit,
        queued_at=row.queued_at,
        started_at=row.started_at,
        finished_at=row.finished_at,
        cancel_requested_at=row.cancel_requested_at,
        error=error,
        owner=row.owner,
        attempts=int(row.attempts),
        attempt_save_version=row.attempt_save_version,
        acknowledged_attempts=int(row.acknowledged_attempts),
    )

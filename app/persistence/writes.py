"""How each StoreWrite becomes SQL inside the store's write transaction, and the event
sequence numbers it hands out."""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy import Connection, and_, func, select, update

from app.domain.ports import (
    AcknowledgeAttempt,
    AppendEvent,
    AppendLogs,
    RecordOutputs,
    StoreWrite,
    Transition,
)
from app.domain.runs import TERMINAL_STATUSES, EventType, RunStatus, sources_of
from app.persistence.storable import storable_json, storable_optional, storable_text
from app.persistence.tables import run_events, run_logs, runs

_TERMINAL_EVENTS = frozenset(
    {EventType.RUN_SUCCEEDED, EventType.RUN_FAILED, EventType.RUN_CANCELLED}
)


class WriteApplier:
    """Applies writes on a connection the caller's transaction holds. Keeps the last
    event seq of each run it wrote: writes come from one thread at a time, so this is
    exact; a run not seen yet is read from the table once. When a transaction rolls
    back, ``restore`` what ``sequences`` returned before it."""

    def __init__(self) -> None:
        self._last_seq: dict[str, int] = {}

    def sequences(self) -> dict[str, int]:
        return dict(self._last_seq)

    def restore(self, sequences: dict[str, int]) -> None:
        self._last_seq = sequences

    def new_run(self, run_id: str) -> None:
        self._last_seq[run_id] = 0  # a new run has no events yet

    def apply(self, connection: Connection, write: StoreWrite) -> bool:
        """Apply ``write``; False if it did not apply (a transition from a state the
        transition table does not allow, an acknowledgement of a run no longer active)."""
        if isinstance(write, AppendEvent):
            self.append_event(connection, write)
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
        self.append_event(
            connection, AppendEvent(write.run_id, write.event, write.at, None, write.event_data)
        )
        return True

    def append_event(self, connection: Connection, event: AppendEvent) -> None:
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

"""How each StoreWrite becomes SQL inside the store's write transaction, and the event
sequence numbers it hands out. Nothing is kept in memory: any number of store instances,
in any number of processes, may write at once."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime
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
from app.domain.runs import ACTIVE_STATUSES, TERMINAL_STATUSES, RunStatus, sources_of
from app.persistence.counters import (
    keep_ahead_of,
    lock_counters,
    next_change_id,
    next_save_version,
)
from app.persistence.engine import takes_row_locks
from app.persistence.storable import storable_json, storable_optional, storable_text
from app.persistence.tables import run_events, run_logs, runs, state_changes

_ACTIVE = [str(status) for status in ACTIVE_STATUSES]


def apply_writes(connection: Connection, writes: Sequence[StoreWrite]) -> list[bool]:
    """Apply ``writes`` in order on a connection whose transaction the caller holds;
    per write, whether it applied (see ``apply_write``). Locks first (``lock_rows``);
    consecutive events of one run are numbered and inserted together."""
    lock_rows(connection, writes)
    applied: list[bool] = []
    start = 0
    while start < len(writes):
        write, end = writes[start], start + 1
        if isinstance(write, AppendEvent):
            while end < len(writes) and _same_run_event(writes[end], write.run_id):
                end += 1
            events = [event for event in writes[start:end] if isinstance(event, AppendEvent)]
            applied.extend([append_events(connection, events)] * len(events))
        else:
            applied.append(apply_write(connection, write))
        start = end
    return applied


def _same_run_event(write: StoreWrite, run_id: str) -> bool:
    return isinstance(write, AppendEvent) and write.run_id == run_id


def lock_rows(connection: Connection, writes: Sequence[StoreWrite]) -> None:
    """Lock what ``writes`` will change before anything is written: the counters' row if
    they need it, then the rows of their runs in run id order. Two transactions that
    touch the same rows then queue instead of deadlocking (each would otherwise lock
    them in its own batch's order). SQLite's one writer holds every lock already."""
    if not takes_row_locks(connection):
        return
    if any(isinstance(write, Transition) for write in writes):  # a change to record
        lock_counters(connection)
    run_ids = sorted({write.run_id for write in writes})
    if run_ids:
        connection.execute(
            select(runs.c.run_id)
            .where(runs.c.run_id.in_(run_ids))
            .order_by(runs.c.run_id)
            .with_for_update()
        )


def apply_write(connection: Connection, write: StoreWrite) -> bool:
    """Apply ``write`` on a connection whose transaction the caller holds; False if it
    did not apply (a transition from a state the transition table does not allow, an
    acknowledgement of a run no longer active, an event of a run that is not stored)."""
    if isinstance(write, AppendEvent):
        return append_events(connection, [write])
    if isinstance(write, AppendLogs):
        if not _still_held(connection, write.run_id, write.fence):
            return False
        _append_logs(connection, write)
        return True
    if isinstance(write, AcknowledgeAttempt):
        active = [str(RunStatus.RUNNING), str(RunStatus.CANCELLING)]
        match = and_(runs.c.run_id == write.run_id, runs.c.status.in_(active))
        if write.fence is not None:  # only while the replica still holds the run
            match = and_(match, runs.c.claimed_by == write.fence)
        result = connection.execute(
            update(runs).where(match).values(acknowledged_attempts=runs.c.attempts)
        )
        return bool(result.rowcount == 1)
    if isinstance(write, RecordOutputs):
        match = runs.c.run_id == write.run_id
        if write.fence is not None:
            match = and_(match, runs.c.claimed_by == write.fence, runs.c.status.in_(_ACTIVE))
        result = connection.execute(
            update(runs).where(match).values(outputs=storable_json(write.outputs))
        )
        return write.fence is None or bool(result.rowcount == 1)
    moved = _transition(connection, write)
    if moved is None:
        return False
    data, owner = moved
    append_events(connection, [AppendEvent(write.run_id, write.event, write.at, None, data)])
    record_state_change(connection, write.run_id, write.target, write.at, owner)
    return True


def _still_held(connection: Connection, run_id: str, fence: str | None) -> bool:
    """Whether a write fenced on ``fence`` may apply: the run is still active and still
    claimed by it (a run that ended takes nothing more from a replica)."""
    if fence is None:
        return True
    held = connection.scalar(
        select(runs.c.run_id).where(
            and_(runs.c.run_id == run_id, runs.c.claimed_by == fence, runs.c.status.in_(_ACTIVE))
        )
    )
    return held is not None


def record_state_change(
    connection: Connection, run_id: str, status: RunStatus, at: datetime, owner: str
) -> None:
    """Add the run's change to ``status`` to the feed, under the next change id. The
    counters' row stays locked until commit, so ids become visible in order."""
    connection.execute(
        state_changes.insert().values(
            id=next_change_id(connection), run_id=run_id, status=str(status), at=at, owner=owner
        )
    )


def append_events(connection: Connection, events: Sequence[AppendEvent]) -> bool:
    """Record ``events``, all of one run, under its next seqs, taken from
    ``runs.last_event_seq`` in this transaction. The run row stays locked until commit,
    so a run's events become visible in seq order, whichever process writes them: a
    reader that asks for ``seq > last`` never skips one that commits later. False if the
    run is not stored (or, for fenced events, no longer claimed by their replica)."""
    run_id = events[0].run_id
    match = runs.c.run_id == run_id
    fences = {event.fence for event in events if event.fence is not None}
    if fences:
        match = and_(match, runs.c.claimed_by.in_(fences), runs.c.status.in_(_ACTIVE))
    last = connection.execute(
        update(runs)
        .where(match)
        .values(last_event_seq=runs.c.last_event_seq + len(events))
        .returning(runs.c.last_event_seq)
    ).scalar_one_or_none()
    if last is None:
        return False
    connection.execute(
        run_events.insert(),
        [
            {
                "run_id": run_id,
                "seq": seq,
                "type": str(event.type),
                "at": event.at,
                "node": storable_optional(event.node),
                "data": storable_json(event.data),
            }
            for seq, event in enumerate(events, start=last - len(events) + 1)
        ],
    )
    return True


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


def _transition(connection: Connection, move: Transition) -> tuple[dict[str, object], str] | None:
    """Move the run; the data of the move's event and the run's owner, or None if the
    move did not apply."""
    data = dict(move.event_data)
    values: dict[str, Any] = {"status": str(move.target)}
    if move.target is RunStatus.RUNNING:
        values["started_at"] = move.at
        values["attempts"] = runs.c.attempts + 1
        values["claimed_by"] = move.claim_for
    elif move.target is RunStatus.QUEUED:
        values["claimed_by"] = None  # whoever claims it next
        save_version = move.save_version
        if move.new_save_version:
            # Taken whether or not the move applies: a gap in versions harms nothing.
            save_version = data["next_save_version"] = next_save_version(connection, move.at)
        elif save_version is not None:
            keep_ahead_of(connection, save_version)
        values["attempt_save_version"] = save_version
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
    # Conditional: only from a state the transition table allows (and the move's own
    # narrower sources), so two writers cannot both move the same run, and a terminal
    # run never changes; with a fence, only while the run is still that replica's.
    sources = sources_of(move.target)
    if move.only_from is not None:
        sources = sources & move.only_from
    match = and_(runs.c.run_id == move.run_id, runs.c.status.in_([str(s) for s in sources]))
    if move.fence is not None:
        match = and_(match, runs.c.claimed_by == move.fence)
    moved = connection.execute(
        update(runs)
        .where(match)
        .values(values)
        .returning(func.coalesce(runs.c.attempt_save_version, runs.c.save_version), runs.c.owner)
    ).first()
    if moved is None:
        return None
    current_save_version, owner = moved
    if move.target is RunStatus.RUNNING:
        data["save_version"] = current_save_version  # what Kedro gets for this attempt
    return data, str(owner)

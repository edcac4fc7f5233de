"""The service-wide counters of ``service_clock``'s one row, allocated inside the
caller's transaction: the row stays locked until it commits, so what is allocated is
unique and becomes visible in allocation order, whichever process allocates.

Lock order: a transaction that takes this row takes it before any run row
(``lock_counters`` first, then ``writes.lock_rows``), so two transactions never wait
for each other in a circle.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import BigInteger, Connection, case, literal, select, update

from app.domain.save_versions import format_save_version, is_save_version, parse_save_version
from app.persistence.engine import takes_row_locks
from app.persistence.tables import service_clock

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_ROW = service_clock.c.id == 1
_LAST_MS = service_clock.c.last_ms


def _milliseconds(moment: datetime) -> int:
    return (moment - _EPOCH) // timedelta(milliseconds=1)


def lock_counters(connection: Connection) -> None:
    """Take the counters' row lock now (SQLite's one writer holds every lock already)."""
    if takes_row_locks(connection):
        connection.execute(select(service_clock.c.id).where(_ROW).with_for_update())


def next_save_version(connection: Connection, now: datetime) -> str:
    """The next save version: ``now`` to the millisecond, or 1 ms after the newest one
    issued if that is not earlier (clocks of other machines, or several in one ms)."""
    now_ms = literal(_milliseconds(now), BigInteger)
    issued = connection.execute(
        update(service_clock)
        .where(_ROW)
        .values(last_ms=case((now_ms < _LAST_MS + 1, _LAST_MS + 1), else_=now_ms))
        .returning(_LAST_MS)
    ).scalar_one()
    return format_save_version(_EPOCH + timedelta(milliseconds=int(issued)))


def keep_ahead_of(connection: Connection, save_version: str) -> None:
    """A save version the caller chose is stored: later ones must come after it."""
    if not is_save_version(save_version):
        return  # not Kedro's format (tests name versions freely): nothing to keep ahead of
    given = literal(_milliseconds(parse_save_version(save_version)), BigInteger)
    connection.execute(
        update(service_clock)
        .where(_ROW)
        .values(last_ms=case((given > _LAST_MS, given), else_=_LAST_MS))
    )


def next_change_id(connection: Connection) -> int:
    """The next state change's id: one more than the last, so ids have no gaps."""
    issued = connection.execute(
        update(service_clock)
        .where(_ROW)
        .values(last_change_id=service_clock.c.last_change_id + 1)
        .returning(service_clock.c.last_change_id)
    ).scalar_one()
    return int(issued)

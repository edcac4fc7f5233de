"""The cluster's part of the store (PostgreSQL only): replicas and their leases, the
dispatch lock, and the notices sent when something is recorded.

Time is the database's (``now()``), never a replica's clock: replicas on several
machines disagree about the time, but not about the database's.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

from sqlalchemy import (
    ColumnElement,
    Connection,
    Engine,
    and_,
    delete,
    func,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert

from app.domain.ports import AppendEvent, AppendLogs, StoreWrite, Transition
from app.domain.runs import ACTIVE_STATUSES, TERMINAL_STATUSES, Run, RunStatus
from app.persistence.counters import lock_counters
from app.persistence.failures import unavailable_is_retry_later
from app.persistence.notices import CHANNEL
from app.persistence.rows import run_from_row
from app.persistence.tables import instances, runs
from app.persistence.writes import apply_writes

# pg_advisory_xact_lock keys (64-bit): one dispatch pass at a time, database-wide.
DISPATCH_LOCK = 0x6B7272756E730001  # "kruns" + 1

_ACTIVE = [str(status) for status in ACTIVE_STATUSES]


def _lease_expired(lease_seconds: float) -> ColumnElement[bool]:
    lease = func.make_interval(0, 0, 0, 0, 0, 0, lease_seconds)
    expired: ColumnElement[bool] = instances.c.heartbeat_at < func.now() - lease
    return expired


@unavailable_is_retry_later
class SqlClusterStore:
    """See ``app.domain.ports.ClusterStore``. Shares the run store's engine and writes."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def join(self, instance: str, ready_workers: int) -> None:
        with self._engine.begin() as connection:
            connection.execute(
                pg_insert(instances)
                .values(
                    instance_id=instance,
                    joined_at=func.now(),
                    heartbeat_at=func.now(),
                    ready_workers=ready_workers,
                    busy=0,
                )
                .on_conflict_do_nothing()
            )

    def heartbeat(self, instance: str, ready_workers: int, busy: int) -> bool:
        with self._engine.begin() as connection:
            result = connection.execute(
                update(instances)
                .where(instances.c.instance_id == instance)
                .values(heartbeat_at=func.now(), ready_workers=ready_workers, busy=busy)
            )
        return bool(result.rowcount == 1)

    def leave(self, instance: str) -> None:
        with self._engine.begin() as connection:
            connection.execute(delete(instances).where(instances.c.instance_id == instance))

    def take_over(
        self, instance: str, lease_seconds: float, settle: Callable[[list[Run]], list[Transition]]
    ) -> tuple[list[Run], list[StoreWrite]]:
        """In one transaction: remove ``instance`` if its lease has lapsed (else do nothing)
        and apply ``settle(its active runs)``. Returns the runs and the writes applied."""
        with self._engine.begin() as connection:
            gone = connection.execute(
                delete(instances)
                .where(and_(instances.c.instance_id == instance, _lease_expired(lease_seconds)))
                .returning(instances.c.instance_id)
            ).first()
            if gone is None:
                return [], []  # it renewed meanwhile, or another replica took it over
            return self._settle(connection, runs.c.claimed_by == instance, settle)

    def settle_orphans(
        self, settle: Callable[[list[Run]], list[Transition]]
    ) -> tuple[list[Run], list[StoreWrite]]:
        """Settle active runs no replica holds: claimed by none (an embedded service's,
        left by a crash) or by a replica that is no longer a member."""
        members = select(instances.c.instance_id)
        orphaned = or_(runs.c.claimed_by.is_(None), runs.c.claimed_by.not_in(members))
        with self._engine.begin() as connection:
            return self._settle(connection, orphaned, settle)

    @staticmethod
    def _settle(
        connection: Connection,
        which: ColumnElement[bool],
        settle: Callable[[list[Run]], list[Transition]],
    ) -> tuple[list[Run], list[StoreWrite]]:
        lock_counters(connection)  # writers lock the counters, then runs: the same order
        rows = connection.execute(
            select(runs)
            .where(and_(which, runs.c.status.in_(_ACTIVE)))
            .order_by(runs.c.run_id)
            .with_for_update()
        ).all()
        found = [run_from_row(row) for row in rows]
        moves = settle(found)
        done = apply_writes(connection, moves)
        applied: list[StoreWrite] = [m for m, ok in zip(moves, done, strict=True) if ok]
        send_notices(connection, applied)
        return found, applied

    def expired_instances(self, lease_seconds: float) -> list[str]:
        query = select(instances.c.instance_id).where(_lease_expired(lease_seconds))
        with self._engine.connect() as connection:
            return [row.instance_id for row in connection.execute(query)]

    def claimed_by(self, instance: str) -> list[Run]:
        query = (
            select(runs)
            .where(and_(runs.c.claimed_by == instance, runs.c.status.in_(_ACTIVE)))
            .order_by(runs.c.save_version)
        )
        with self._engine.connect() as connection:
            return [run_from_row(row) for row in connection.execute(query)]

    def live_workers(self, lease_seconds: float) -> int:
        query = select(func.coalesce(func.sum(instances.c.ready_workers), 0)).where(
            ~_lease_expired(lease_seconds)
        )
        with self._engine.connect() as connection:
            return int(connection.scalar(query) or 0)

    def queued_count(self) -> int:
        query = select(func.count()).where(runs.c.status == str(RunStatus.QUEUED))
        with self._engine.connect() as connection:
            return int(connection.scalar(query) or 0)

    def dispatch_state(self) -> tuple[list[Run], list[Run]]:
        with self._engine.connect() as connection:
            return _dispatch_state(connection)

    def claim(
        self,
        instance: str,
        lease_seconds: float,
        choose: Callable[[list[Run], list[Run]], list[Transition]],
    ) -> tuple[list[Run], list[StoreWrite]]:
        with self._engine.begin() as connection:
            # Serialises passes: each sees every claim committed before it, so two
            # replicas never both start runs that conflict, or overtake an earlier one.
            connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": DISPATCH_LOCK})
            # Only under a current lease, held (FOR SHARE) until commit: a replica taken
            # over meanwhile claims nothing, and one taken over after this waits for it,
            # then settles what it claimed (see take_over).
            current = connection.execute(
                select(instances.c.instance_id)
                .where(and_(instances.c.instance_id == instance, ~_lease_expired(lease_seconds)))
                .with_for_update(read=True)
            ).first()
            if current is None:
                return [], []
            queued, active = _dispatch_state(connection)
            before = {run.run_id: run for run in queued}
            moves = [move for move in choose(queued, active) if move.claim_for == instance]
            done = apply_writes(connection, moves)
            claimed = [before[m.run_id] for m, ok in zip(moves, done, strict=True) if ok]
            applied: list[StoreWrite] = [m for m, ok in zip(moves, done, strict=True) if ok]
            send_notices(connection, applied)
        return claimed, applied


def _dispatch_state(connection: Connection) -> tuple[list[Run], list[Run]]:
    rows = connection.execute(
        select(runs).where(runs.c.status.in_([str(RunStatus.QUEUED), *_ACTIVE]))
    ).all()
    found = [run_from_row(row) for row in rows]
    queued = sorted(
        (run for run in found if run.status is RunStatus.QUEUED),
        key=lambda run: run.current_save_version,
    )
    active = [run for run in found if run.status is not RunStatus.QUEUED]
    return queued, active


def notices_for(writes: Iterable[StoreWrite]) -> list[str]:
    """What other replicas must hear of ``writes`` once they commit (see
    ``domain.cluster_scheduler``): in order, without repeats."""
    found: dict[str, None] = {}
    for write in writes:
        if isinstance(write, AppendEvent | AppendLogs):
            found[f"r:{write.run_id}"] = None
        elif isinstance(write, Transition):
            found[f"r:{write.run_id}"] = None
            if write.target is RunStatus.CANCELLING:
                found[f"c:{write.run_id}"] = None
            if write.target in TERMINAL_STATUSES:
                found[f"e:{write.run_id}"] = None
            found["s"] = None
    return list(found)


def send_notices(connection: Connection, writes: Sequence[StoreWrite], queued: str = "") -> None:
    """Queue the notices of ``writes`` (and ``r:<queued>`` plus ``s`` for a run just
    inserted) in the transaction: PostgreSQL delivers them at commit, and only then."""
    notices = notices_for(writes)
    if queued:
        notices = [f"r:{queued}", *notices, "s"]
    for notice in dict.fromkeys(notices):
        connection.execute(
            text("SELECT pg_notify(:channel, :payload)"), {"channel": CHANNEL, "payload": notice}
        )

"""The cluster's part of the store on a real PostgreSQL database: claims only under a
current lease, take-overs that skip a replica which renewed, and the orphan sweep."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import replace

import pytest
from sqlalchemy import text

from app.domain.policy import lost_run_writes
from app.domain.ports import (
    AcknowledgeAttempt,
    AppendEvent,
    AppendLogs,
    RecordOutputs,
    Transition,
)
from app.domain.reports import LogLine
from app.domain.runs import EventType, FailureReason, Footprint, Run, RunSpec, RunStatus, utcnow
from app.persistence.cluster import SqlClusterStore
from app.persistence.store import SqlRunStore

LEASE = 30.0


@pytest.fixture
def shared(postgres_url: str) -> Iterator[tuple[SqlRunStore, SqlClusterStore]]:
    store = SqlRunStore(postgres_url, shared=True)
    yield store, store.cluster()
    store.close()


def _queued(run_id: str) -> Run:
    return Run(
        run_id=run_id,
        save_version="",
        status=RunStatus.QUEUED,
        spec=RunSpec(pipeline_names=("p",)),
        nodes=("n",),
        footprint=Footprint(writes=frozenset({f"/data/{run_id}"})),
        env=None,
        kedro_version="1.7.0",
        project_commit=None,
        queued_at=utcnow(),
    )


def _claim_all(instance: str) -> Callable[[list[Run], list[Run]], list[Transition]]:
    def choose(queued: list[Run], active: list[Run]) -> list[Transition]:
        return [
            Transition(
                r.run_id, RunStatus.RUNNING, utcnow(), EventType.RUN_STARTED, claim_for=instance
            )
            for r in queued
        ]

    return choose


def _age(store: SqlRunStore, instance: str, seconds: float) -> None:
    """Make ``instance``'s last heartbeat ``seconds`` old (the database's clock)."""
    with store._writer.begin() as connection:
        connection.execute(
            text(
                "UPDATE instances SET heartbeat_at = now() - make_interval(secs => :s) "
                "WHERE instance_id = :i"
            ),
            {"s": seconds, "i": instance},
        )


def test_a_replica_whose_lease_lapsed_claims_nothing(
    shared: tuple[SqlRunStore, SqlClusterStore],
) -> None:
    store, cluster = shared
    store.insert_run(_queued("r"))
    cluster.join("a", 1)
    _age(store, "a", LEASE + 1)
    assert cluster.claim("a", LEASE, _claim_all("a")) == ([], [])
    cluster.leave("a")
    assert cluster.claim("a", LEASE, _claim_all("a")) == ([], [])  # not a member at all
    cluster.join("b", 1)
    claimed, applied = cluster.claim("b", LEASE, _claim_all("b"))
    assert [run.run_id for run in claimed] == ["r"]
    assert len(applied) == 1
    assert [run.run_id for run in cluster.claimed_by("b")] == ["r"]


def _settle(runs: list[Run]) -> list[Transition]:
    return lost_run_writes(runs, "gone", FailureReason.WORKER_LOST, utcnow())


def test_a_take_over_settles_a_lapsed_replica_once_and_never_a_renewed_one(
    shared: tuple[SqlRunStore, SqlClusterStore],
) -> None:
    store, cluster = shared
    for run_id in ("r1", "r2"):
        store.insert_run(_queued(run_id))
    cluster.join("a", 1)
    cluster.claim("a", LEASE, _claim_all("a"))
    store.write([AcknowledgeAttempt("r1", fence="a"), AcknowledgeAttempt("r2", fence="a")])
    assert cluster.take_over("a", LEASE, _settle) == ([], [])  # still current
    _age(store, "a", LEASE + 1)
    found, applied = cluster.take_over("a", LEASE, _settle)
    assert sorted(run.run_id for run in found) == ["r1", "r2"]
    assert len(applied) == 2
    assert {store.get_run(r).status for r in ("r1", "r2")} == {RunStatus.FAILED}  # type: ignore[union-attr]
    assert cluster.take_over("a", LEASE, _settle) == ([], [])  # gone: once only
    assert cluster.heartbeat("a", 1, 0) is False  # and it learns it was declared dead
    # Its late writes no longer apply: not its end, nor events, logs or outputs of a run
    # that has ended (still marked as claimed by it).
    at = utcnow()
    late = [
        Transition("r1", RunStatus.SUCCEEDED, at, EventType.RUN_SUCCEEDED, fence="a"),
        AppendEvent("r1", EventType.NODE_COMPLETED, at, "n", fence="a"),
        AppendLogs("r1", (LogLine(at, "INFO", "x", "n", "late"),), fence="a"),
        RecordOutputs("r1", {"saved": [], "free": []}, fence="a"),
    ]
    assert store.write(late) == [False] * 4
    assert [event.type for event in store.list_events("r1", 0, 100)][-1] is EventType.RUN_FAILED
    assert store.list_logs("r1", 0, 0, 100) == ([], 0)


def test_the_orphan_sweep_settles_active_runs_no_member_holds(
    shared: tuple[SqlRunStore, SqlClusterStore],
) -> None:
    store, cluster = shared
    for run_id in ("held", "unheld", "ghost"):
        store.insert_run(_queued(run_id))
    cluster.join("live", 1)
    claim = Transition("unheld", RunStatus.RUNNING, utcnow(), EventType.RUN_STARTED)
    ghost = replace(claim, run_id="ghost", claim_for="departed")
    held = replace(claim, run_id="held", claim_for="live")
    assert store.write([claim, ghost, held]) == [True, True, True]
    found, _ = cluster.settle_orphans(_settle)
    assert sorted(run.run_id for run in found) == ["ghost", "unheld"]
    assert store.get_run("held").status is RunStatus.RUNNING  # type: ignore[union-attr]


def test_a_transaction_left_open_is_ended_by_the_server(
    shared: tuple[SqlRunStore, SqlClusterStore],
) -> None:
    """A replica paused inside a transaction would hold the counters' row lock that every
    writer takes: the store's sessions ask the server to end such a transaction."""
    store, _ = shared
    with store._writer.connect() as connection:
        setting = connection.scalar(text("SHOW idle_in_transaction_session_timeout"))
    assert setting == "15s"

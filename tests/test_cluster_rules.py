"""The cluster scheduler's rules on in-memory fakes of the shared store, the cluster
(leases on one clock, claims under one lock) and replicas' pools; notices are lost on
purpose (SilentListener), so the re-checks are what hold it together. Milliseconds to
seconds, no PostgreSQL: the same behaviours run on real replicas in test_cluster."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, replace

from app.domain import reports
from app.domain.callers import ANONYMOUS
from app.domain.cluster_scheduler import ClusterScheduler
from app.domain.ledger import RunLedger
from app.domain.ports import AcknowledgeAttempt, Transition
from app.domain.runs import EventType, RunSpec, RunStatus, utcnow
from app.domain.service import RunService
from app.errors import QueueFull
from tests.fakes import (
    FencedRunStore,
    InMemoryCluster,
    RecordingHooks,
    ScriptedExecutor,
    SilentListener,
    StaticInspector,
)
from tests.test_scheduling_rules import WRITES_A, WRITES_B, eventually, run

LEASE, HEARTBEAT = 0.6, 0.1


@dataclass
class Replica:
    service: RunService
    scheduler: ClusterScheduler
    executor: ScriptedExecutor

    async def submit(
        self, pipeline: str, run_id: str, max_attempts: int = 1, limit: float | None = None
    ) -> None:
        spec = RunSpec(pipeline_names=(pipeline,), max_attempts=max_attempts, timeout_seconds=limit)
        await self.service.submit(spec, run_id, caller=ANONYMOUS)

    def start_and_ack(self, run_id: str) -> None:
        self.executor.report(reports.RunStarted(run_id, utcnow(), 1))


@asynccontextmanager
async def replicas(
    store: FencedRunStore,
    cluster: InMemoryCluster,
    count: int,
    lease: float = LEASE,
    heartbeat: float = HEARTBEAT,
    max_queued: int = 1000,
) -> AsyncIterator[list[Replica]]:
    async with AsyncExitStack() as stack:
        found = []
        for _ in range(count):
            executor = ScriptedExecutor(slots=1)
            ledger = RunLedger(store, RecordingHooks())
            scheduler = ClusterScheduler(
                ledger,
                executor,
                cluster,
                SilentListener(),
                cancel_grace_seconds=5,
                lease_seconds=lease,
                heartbeat_seconds=heartbeat,
                recheck_seconds=0.05,
                max_queued_runs=max_queued,
            )
            service = RunService(
                ledger, scheduler, StaticInspector({"wa": WRITES_A, "wb": WRITES_B})
            )
            await service.start()
            stack.push_async_callback(service.stop)
            found.append(Replica(service, scheduler, executor))
        yield found


def test_a_cancel_recorded_elsewhere_before_the_worker_was_lost_ends_cancelled() -> None:
    """The cancel's notice never came; the worker was lost; the end this replica
    proposed (a retry) did not apply to a cancelling run. The run must not stay
    cancelling: the replica's own re-check settles it as cancelled."""

    async def scenario() -> None:
        store = FencedRunStore()
        async with replicas(store, InMemoryCluster(store), 1) as (a,):
            await a.submit("wa", "r", max_attempts=2)
            await eventually(lambda: len(a.executor.assigned) == 1, "claimed")
            a.start_and_ack("r")
            await eventually(lambda: store.runs["r"].acknowledged_attempts == 1, "acked")
            ask = Transition("r", RunStatus.CANCELLING, utcnow(), EventType.RUN_CANCEL_REQUESTED)
            store.write([ask])  # by another replica
            a.executor.lose("r")
            await eventually(lambda: store.runs["r"].status is RunStatus.CANCELLED, "cancelled")

    run(scenario)


def test_after_an_outage_of_the_database_no_replica_declares_another_dead() -> None:
    """Down for longer than a lease, the database comes back with every lease lapsed.
    The first replica to renew must give the others a lease's time to renew too."""

    async def scenario() -> None:
        store = FencedRunStore()
        cluster = InMemoryCluster(store)
        async with replicas(store, cluster, 2) as (a, b):
            await asyncio.sleep(LEASE * 1.5)  # both healthy for a lease: they may take over
            members = {a.scheduler.instance, b.scheduler.instance}
            cluster.down = True
            await asyncio.sleep(LEASE * 2)
            cluster.unreachable.add(b.scheduler.instance)  # b gets through a moment later
            cluster.down = False
            await asyncio.sleep(HEARTBEAT * 3)
            cluster.unreachable.clear()
            await asyncio.sleep(LEASE * 2)
            assert {a.scheduler.instance, b.scheduler.instance} == members  # none rejoined
            assert set(cluster.heartbeats) == members

    run(scenario)


def test_a_replica_that_cannot_renew_stops_its_runs_before_another_takes_them() -> None:
    async def scenario() -> None:
        store = FencedRunStore()
        cluster = InMemoryCluster(store)
        async with replicas(store, cluster, 2) as (a, b):
            await asyncio.sleep(LEASE * 1.5)  # both have been healthy for a lease
            await a.submit("wa", "r", max_attempts=2)
            await eventually(lambda: len(a.executor.assigned + b.executor.assigned) == 1, "claimed")
            holder, other = (a, b) if a.executor.assigned else (b, a)
            holder.start_and_ack("r")
            await eventually(lambda: store.runs["r"].acknowledged_attempts == 1, "acked")
            cluster.unreachable.add(holder.scheduler.instance)
            await eventually(lambda: holder.executor.kills == ["r"], "the holder stops its run")
            assert other.executor.assigned == []  # it stopped first: never two at once
            await eventually(lambda: len(other.executor.assigned) == 1, "taken over, run again")
            other.start_and_ack("r")
            other.executor.report(reports.RunSucceeded("r", utcnow()))
            await eventually(lambda: store.runs["r"].status is RunStatus.SUCCEEDED, "succeeds")
            cluster.unreachable.clear()
            await asyncio.sleep(LEASE)
            assert store.event_types("r").count("run_succeeded") == 1

    run(scenario)


def test_a_replica_taken_over_while_paused_claims_nothing_and_leaves_no_orphan() -> None:
    async def scenario() -> None:
        store = FencedRunStore()
        cluster = InMemoryCluster(store)
        async with replicas(store, cluster, 2) as (a, b):
            await asyncio.sleep(LEASE * 1.5)
            # A is "paused": its lease lapses and B takes it over (no runs to settle).
            cluster.heartbeats[a.scheduler.instance] -= LEASE * 10
            await eventually(
                lambda: (
                    a.scheduler.instance not in cluster.heartbeats
                    or cluster.heartbeats[a.scheduler.instance] > 0
                ),
                "taken over",
            )
            b.executor.slots = 0  # only A could take the next run
            await a.submit("wb", "r")
            await eventually(lambda: len(a.executor.assigned) == 1, "claimed under a new lease")
            owner = store.claimed_by["r"]
            assert owner == a.scheduler.instance
            assert owner in cluster.heartbeats

    run(scenario)


def test_active_runs_no_replica_holds_are_settled() -> None:
    """An embedded service crashed with two runs active (claimed by no replica): one a
    worker had taken, one it had not. Replicas started on its database settle them as a
    restart would: the first failed(worker_lost), the second back to the queue and run."""

    async def scenario() -> None:
        from tests.test_scheduling_rules import _claim, _stored_run

        store = FencedRunStore()
        for run_id, version in (
            ("taken", "2026-01-01T00.00.00.000Z"),
            ("not_taken", "2026-01-01T00.00.00.001Z"),
        ):
            store.insert_run(replace(_stored_run(run_id, version), footprint=WRITES_B))
            store.write([_claim(run_id)])
        store.write([AcknowledgeAttempt("taken")])
        async with replicas(store, InMemoryCluster(store), 1) as (a,):
            await eventually(lambda: store.runs["taken"].status is RunStatus.FAILED, "settled")
            error = store.runs["taken"].error
            assert error is not None
            assert str(error.reason) == "worker_lost"
            await eventually(
                lambda: [r.run_id for r in a.executor.assigned] == ["not_taken"], "run"
            )
            assert "run_requeued" in store.event_types("not_taken")

    run(scenario)


def test_a_run_past_its_timeout_when_a_worker_frees_up_fails_without_starting() -> None:
    """As embedded: a queued run whose timeout passed ends failed(timeout) without an
    attempt, rather than being claimed and then killed (the sweep is far off here)."""

    async def scenario() -> None:
        store = FencedRunStore()
        async with replicas(store, InMemoryCluster(store), 1, lease=60, heartbeat=20) as (a,):
            await a.submit("wa", "busy")
            await eventually(lambda: len(a.executor.assigned) == 1, "busy claimed")
            a.start_and_ack("busy")
            await a.submit("wb", "late", limit=0.2)
            await asyncio.sleep(0.4)
            a.executor.report(reports.RunSucceeded("busy", utcnow()))
            await eventually(lambda: store.runs["late"].status is RunStatus.FAILED, "late fails")
            assert [r.run_id for r in a.executor.assigned] == ["busy"]
            assert store.runs["late"].attempts == 0

    run(scenario)


def test_concurrent_submissions_to_a_replica_keep_to_the_queue_cap() -> None:
    async def scenario() -> None:
        store = FencedRunStore()
        async with replicas(store, InMemoryCluster(store), 1, max_queued=3) as (a,):
            a.executor.slots = 0  # nothing starts: every run stays queued
            outcomes = await asyncio.gather(
                *(a.submit("wa", f"r{i}") for i in range(10)), return_exceptions=True
            )
            refused = [o for o in outcomes if isinstance(o, QueueFull)]
            assert (len(outcomes) - len(refused), len(refused)) == (3, 7)
            assert sum(1 for run in store.runs.values() if run.status is RunStatus.QUEUED) == 3

    run(scenario)

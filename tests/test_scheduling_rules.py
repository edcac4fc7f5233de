"""The scheduler's and the service's rules on in-memory fakes of the store, the
executor and the project: milliseconds per test, no processes. The same behaviours are
tested end to end with real workers elsewhere (test_concurrency, test_crash_points)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass

import pytest

from app.domain import reports
from app.domain.callers import ANONYMOUS
from app.domain.ports import AcknowledgeAttempt, Transition
from app.domain.runs import EventType, Footprint, Run, RunSpec, RunStatus, utcnow
from app.domain.service import RunService
from app.errors import RunStateConflict
from tests.fakes import InMemoryRunStore, RecordingHooks, ScriptedExecutor, StaticInspector

WRITES_A = Footprint(writes=frozenset({"/data/a.csv"}))
READS_A = Footprint(reads=frozenset({"/data/a.csv"}))
WRITES_B = Footprint(writes=frozenset({"/data/b.csv"}))


@dataclass
class World:
    service: RunService
    store: InMemoryRunStore
    executor: ScriptedExecutor
    hooks: RecordingHooks

    async def submit(self, pipeline: str, run_id: str, **spec: object) -> None:
        spec_ = RunSpec(pipeline_names=(pipeline,), **spec)  # type: ignore[arg-type]
        await self.service.submit(spec_, run_id, caller=ANONYMOUS)

    def status(self, run_id: str) -> RunStatus:
        return self.store.runs[run_id].status

    def finish(self, run_id: str) -> None:
        self.executor.report(reports.RunStarted(run_id, utcnow(), 1))
        self.executor.report(reports.RunSucceeded(run_id, utcnow()))


async def eventually(check: Callable[[], bool], what: str, seconds: float = 5.0) -> None:
    """Let the scheduler work until ``check()`` holds (bounded: ``seconds``; a loaded
    machine may need them, an unloaded one takes milliseconds)."""
    deadline = asyncio.get_running_loop().time() + seconds
    while not check():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"never happened: {what}")
        await asyncio.sleep(0.002)


@asynccontextmanager
async def world(
    slots: int = 1, store: InMemoryRunStore | None = None, **options: float
) -> AsyncIterator[World]:
    store = store or InMemoryRunStore()
    executor = ScriptedExecutor(slots=slots)
    hooks = RecordingHooks()
    inspector = StaticInspector({"wa": WRITES_A, "ra": READS_A, "wb": WRITES_B})
    service = RunService.local(
        store,
        inspector,
        executor,
        cancel_grace_seconds=options.pop("cancel_grace_seconds", 0.05),
        hooks=hooks,
        **options,  # type: ignore[arg-type]
    )
    await service.start()
    try:
        yield World(service, store, executor, hooks)
    finally:
        await service.stop()


def run(test: Callable[[], Awaitable[None]]) -> None:
    asyncio.run(asyncio.wait_for(test(), 20))


def test_conflicting_runs_keep_submission_order_and_others_overtake() -> None:
    async def scenario() -> None:
        async with world(slots=2) as w:
            await w.submit("wa", "first")
            await w.submit("ra", "reader")  # reads what "first" writes: waits
            await w.submit("wb", "other")  # touches nothing of theirs: starts
            await eventually(lambda: len(w.executor.assigned) == 2, "two runs handed over")
            assert [a.run_id for a in w.executor.assigned] == ["first", "other"]
            view = await w.service.get("reader", caller=ANONYMOUS)
            assert view.waiting_for == ["first"]
            w.finish("first")
            await eventually(lambda: w.status("reader") is RunStatus.RUNNING, "reader starts")
            assert w.status("first") is RunStatus.SUCCEEDED

    run(scenario)


def test_a_lost_worker_with_attempts_left_runs_again_under_a_fresh_save_version() -> None:
    async def scenario() -> None:
        async with world() as w:
            await w.submit("wa", "r", max_attempts=2)
            await eventually(lambda: len(w.executor.assigned) == 1, "handed over")
            w.executor.report(reports.RunStarted("r", utcnow(), 1))
            w.executor.lose("r")
            await eventually(lambda: len(w.executor.assigned) == 2, "handed over again")
            first, second = w.executor.assigned
            assert second.save_version > first.save_version
            w.finish("r")
            await eventually(lambda: w.status("r") is RunStatus.SUCCEEDED, "succeeds")
            assert w.store.event_types("r").count("run_requeued") == 1
            assert w.store.runs["r"].attempts == 2

    run(scenario)


def test_a_lost_worker_without_attempts_left_fails_the_run_once() -> None:
    async def scenario() -> None:
        async with world() as w:
            await w.submit("wa", "r")
            await eventually(lambda: len(w.executor.assigned) == 1, "handed over")
            w.executor.report(reports.RunStarted("r", utcnow(), 1))
            w.executor.lose("r")
            await eventually(lambda: w.status("r") is RunStatus.FAILED, "fails")
            error = w.store.runs["r"].error
            assert error is not None
            assert str(error.reason) == "worker_lost"
            finished = [c for c in w.hooks.calls if c[0] == "run_finished"]
            assert finished == [("run_finished", "r", "failed")]

    run(scenario)


def test_a_cancelled_queued_run_never_reaches_a_worker() -> None:
    async def scenario() -> None:
        async with world() as w:
            await w.submit("wa", "busy")
            await w.submit("wb", "queued")  # no slot free
            await w.service.cancel("queued", caller=ANONYMOUS)
            assert w.status("queued") is RunStatus.CANCELLED
            w.finish("busy")
            await eventually(lambda: w.status("busy") is RunStatus.SUCCEEDED, "busy ends")
            assert [a.run_id for a in w.executor.assigned] == ["busy"]
            with pytest.raises(RunStateConflict):
                await w.service.cancel("queued", caller=ANONYMOUS)

    run(scenario)


def test_a_running_run_that_ignores_its_cancel_is_killed_and_ends_cancelled() -> None:
    async def scenario() -> None:
        async with world(cancel_grace_seconds=0.01) as w:
            await w.submit("wa", "r")
            await eventually(lambda: len(w.executor.assigned) == 1, "handed over")
            w.executor.report(reports.RunStarted("r", utcnow(), 1))
            await w.service.cancel("r", caller=ANONYMOUS)
            assert w.executor.cancels == ["r"]
            await eventually(lambda: w.status("r") is RunStatus.CANCELLED, "cancelled")
            assert w.executor.kills == ["r"]

    run(scenario)


def test_a_run_still_queued_past_its_timeout_fails_timeout() -> None:
    async def scenario() -> None:
        async with world() as w:
            await w.submit("wa", "busy")
            await w.submit("wb", "late", timeout_seconds=0.05)
            await eventually(lambda: w.status("late") is RunStatus.FAILED, "times out")
            error = w.store.runs["late"].error
            assert error is not None
            assert str(error.reason) == "timeout"
            assert [a.run_id for a in w.executor.assigned] == ["busy"]

    run(scenario)


def test_start_gives_back_an_attempt_no_worker_took_and_fails_one_that_ran() -> None:
    """As a crash leaves the store: one run claimed and acknowledged by a worker, one
    claimed but never handed over. The next start settles both by the policy."""

    async def scenario() -> None:
        store = InMemoryRunStore()
        for run_id, acknowledged in (("taken", 1), ("claimed", 0)):
            queued = _stored_run(run_id, f"2026-01-01T00.00.00.00{acknowledged}Z")
            store.insert_run(queued)
            store.write([_claim(run_id)])
            if acknowledged:
                store.write([AcknowledgeAttempt(run_id)])
        async with world(store=store) as w:
            await eventually(lambda: w.executor.assigned != [], "re-dispatched")
            assert [a.run_id for a in w.executor.assigned] == ["claimed"]
            assert store.event_types("claimed")[-2:] == ["run_requeued", "run_started"]
            assert store.runs["claimed"].attempts == 1  # the lost attempt was given back
            assert w.status("taken") is RunStatus.FAILED

    run(scenario)


def _stored_run(run_id: str, save_version: str) -> Run:
    return Run(
        run_id=run_id,
        save_version=save_version,
        status=RunStatus.QUEUED,
        spec=RunSpec(pipeline_names=("wa",)),
        nodes=("node",),
        footprint=WRITES_A,
        env=None,
        kedro_version="1.7.0",
        project_commit=None,
        queued_at=utcnow(),
    )


def _claim(run_id: str) -> Transition:
    return Transition(run_id, RunStatus.RUNNING, utcnow(), EventType.RUN_STARTED)


def test_every_fact_is_announced_once_and_only_after_it_is_recorded() -> None:
    async def scenario() -> None:
        async with world() as w:
            await w.submit("wa", "r")
            await eventually(lambda: len(w.executor.assigned) == 1, "handed over")
            w.finish("r")
            await eventually(lambda: w.status("r") is RunStatus.SUCCEEDED, "succeeds")
            told = [c for c in w.hooks.calls if c[1] == "r"]
            assert [c[0] for c in told if c[0] != "event_recorded"] == [
                "run_submitted",
                "run_started",
                "run_finished",
            ]
            recorded = [c[2] for c in told if c[0] == "event_recorded"]
            assert recorded == w.store.event_types("r")
            changes = await w.service.changes_after(0, caller=ANONYMOUS)
            changes = [(c.run_id, c.status) for c in changes]
            assert changes == [("r", "queued"), ("r", "running"), ("r", "succeeded")]

    run(scenario)


def test_a_long_poll_wakes_when_the_run_ends() -> None:
    async def scenario() -> None:
        async with world() as w:
            await w.submit("wa", "r")
            await eventually(lambda: len(w.executor.assigned) == 1, "handed over")
            poll = asyncio.create_task(w.service.get("r", wait_seconds=30, caller=ANONYMOUS))
            await asyncio.sleep(0.01)
            assert not poll.done()
            w.finish("r")
            view = await asyncio.wait_for(poll, 5)
            assert view.run.status is RunStatus.SUCCEEDED

    run(scenario)


def test_a_long_poll_reads_again_when_a_wake_up_never_comes() -> None:
    """With replicas, another process may end the run and its notice may be lost: a long
    poll reads the store again every ``recheck_seconds``, not only when woken."""

    async def scenario() -> None:
        async with world() as w:
            await w.submit("wa", "r")
            await eventually(lambda: len(w.executor.assigned) == 1, "handed over")
            w.service._scheduler.recheck_seconds = 0.02  # type: ignore[attr-defined]
            poll = asyncio.create_task(w.service.get("r", wait_seconds=20, caller=ANONYMOUS))
            await asyncio.sleep(0.01)
            # "Another process" records the end: straight into the store, nobody told.
            succeeded = Transition("r", RunStatus.SUCCEEDED, utcnow(), EventType.RUN_SUCCEEDED)
            w.store.write([succeeded])
            view = await asyncio.wait_for(poll, 5)
            assert view.run.status is RunStatus.SUCCEEDED

    run(scenario)

"""A run whose reports the store refuses every time (not for a full disk) ends failed;
the other runs, and the shutdown, go on as if it were not there.

In process: the real service with real worker processes and a real store (SQLite, then
PostgreSQL), which refuses (as PostgreSQL refuses a value too long for its column) every
log write of the runs it is told to. The project inspector is an in-memory fake of our own port: the
runs execute in the workers, on the real project.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy.exc import DataError

from app.domain import reports
from app.domain.callers import ANONYMOUS
from app.domain.ports import AppendLogs, StoreWrite
from app.domain.runs import Footprint, RunPlan, RunSpec
from app.domain.service import RunService
from app.domain.supervisor import STOP, WRITE_ATTEMPTS, supervise
from app.errors import ServiceUnavailable
from app.kedro_bridge.project import ProjectLocation
from app.persistence.store import SqlRunStore
from app.plugins.manager import create_plugin_manager
from app.worker.pool import ProcessWorkerPool
from app.worker.process import WorkerConfig


class RefusingStore(SqlRunStore):
    """A real store that refuses any write holding log lines of a run in ``refused``."""

    refused: set[str]

    def write(self, writes: Sequence[StoreWrite]) -> list[bool]:
        for write in writes:
            if isinstance(write, AppendLogs) and write.run_id in self.refused:
                raise DataError("INSERT INTO run_logs", {}, Exception("value too long"))
        return super().write(writes)


class PlanEveryRun:
    """The ProjectInspector port: every request is valid and touches nothing."""

    env = None
    kedro_version = "1.7.0"
    project_commit = None

    def plan_now(self, spec: RunSpec) -> RunPlan:
        return RunPlan(nodes=("node",), footprint=Footprint())

    def plan(self, spec: RunSpec) -> RunPlan:
        return self.plan_now(spec)

    def __getattr__(self, name: str) -> Any:
        raise AttributeError(f"not used by this test: {name}")


def _chatty(token: str, count: int, seconds: float) -> RunSpec:
    return RunSpec(
        pipeline_names=("chatty",),
        params={"chatty": {"token": token, "count": count, "seconds": seconds}},
    )


async def _scenario(project: Path, store_url: str) -> dict[str, tuple[str, str | None]]:
    store = RefusingStore(store_url)
    pool = ProcessWorkerPool(WorkerConfig(ProjectLocation(project)), size=2)
    service = RunService.local(
        store,
        PlanEveryRun(),  # type: ignore[arg-type]
        pool,
        cancel_grace_seconds=5,
        hooks=create_plugin_manager([], entry_points=False),  # type: ignore[arg-type]
    )
    # Refused: a short run (its logs come with its end) and a long one (a full batch
    # of logs comes mid-run, while its worker still runs it).
    short, long_ = str(uuid.uuid4()), str(uuid.uuid4())
    store.refused = {short, long_}
    specs = {
        "before": RunSpec(pipeline_names=("noop",)),
        "short": _chatty("short", 3, 0.0),
        "long": _chatty("long", 400, 20.0),
        "other": _chatty("other", 3, 0.0),
    }
    run_ids = {"short": short, "long": long_}
    ended: dict[str, tuple[str, str | None]] = {}
    await service.start()
    try:
        async with asyncio.timeout(90):
            for name, spec in specs.items():
                run_id = run_ids.setdefault(name, str(uuid.uuid4()))
                await service.submit(spec, run_id, caller=ANONYMOUS)
            for name, run_id in run_ids.items():
                view = await service.get(run_id, wait_seconds=60, caller=ANONYMOUS)
                error = view.run.error
                ended[name] = (str(view.run.status), error.type if error else None)
            after = str(uuid.uuid4())
            await service.submit(RunSpec(pipeline_names=("noop",)), after, caller=ANONYMOUS)
            view = await service.get(after, wait_seconds=60, caller=ANONYMOUS)
            ended["after"] = (str(view.run.status), None)
    finally:
        async with asyncio.timeout(60):  # the shutdown is not held up either
            await service.stop(drain_seconds=1)
        store.close()
    return ended


def test_a_run_whose_reports_are_refused_fails_and_the_others_go_on(
    project: Path, store_url: str
) -> None:
    ended = asyncio.run(_scenario(project, store_url))
    assert ended == {
        "before": ("succeeded", None),
        "short": ("failed", "RunNotRecorded"),
        "long": ("failed", "RunNotRecorded"),
        "other": ("succeeded", None),
        "after": ("succeeded", None),
    }


def _supervised(
    fails: Callable[[list[reports.Report]], Exception | None], batch: list[reports.Report]
) -> tuple[list[reports.Report], list[str]]:
    """Run ``supervise`` over ``batch`` (then STOP) with an ``apply_reports`` that raises
    what ``fails`` returns for a batch; (the reports applied, the runs found unrecordable)."""
    applied: list[reports.Report] = []
    unrecordable: list[str] = []

    async def apply_reports(batch: list[reports.Report]) -> None:
        error = fails(batch)
        if error is not None:
            raise error
        applied.extend(batch)

    async def dispatch() -> None:
        pass

    async def scenario() -> None:
        inbox: asyncio.Queue[reports.Report] = asyncio.Queue()
        for report in [*batch, STOP]:
            inbox.put_nowait(report)
        async with asyncio.timeout(30):
            await supervise(
                inbox,
                asyncio.Lock(),
                apply_reports,
                dispatch,
                lambda run_id, _error: unrecordable.append(run_id),
            )

    asyncio.run(scenario())
    return applied, unrecordable


AT = datetime.now(UTC)
BATCH: list[reports.Report] = [
    reports.NodeStarted("good", "n", AT),
    reports.RunLogs("bad", ()),
    reports.NodeCompleted("good", "n", AT),
    reports.RunSucceeded("bad", AT),
    reports.RunSucceeded("good", AT),
]


def test_a_store_that_may_recover_is_retried_and_no_run_is_blamed() -> None:
    attempts = iter(range(10))

    def unavailable_for_a_while(batch: list[reports.Report]) -> Exception | None:
        if next(attempts, 10) < 2 * WRITE_ATTEMPTS:
            return ServiceUnavailable("The run store is unavailable.")
        return None

    applied, unrecordable = _supervised(unavailable_for_a_while, BATCH)
    assert unrecordable == []
    assert applied == BATCH


def test_the_run_whose_reports_always_fail_is_set_apart_in_order() -> None:
    def refuse_bad(batch: list[reports.Report]) -> Exception | None:
        refused = any(getattr(r, "run_id", None) == "bad" for r in batch)
        return ValueError("not storable") if refused else None

    applied, unrecordable = _supervised(refuse_bad, BATCH)
    assert unrecordable == ["bad"]
    assert applied == [r for r in BATCH if getattr(r, "run_id", None) == "good"]

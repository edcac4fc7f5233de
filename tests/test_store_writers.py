"""Several writers on one store at once: what is numbered, versioned and keyed stays
exact. On PostgreSQL the writers are two store instances (cluster replicas, each with
its own connections); a SQLite store has one owner, so there the two writers are threads
sharing its one instance, which is all SQLite allows."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import TypeVar

import pytest
from sqlalchemy.engine import make_url

from app.domain.ports import AppendEvent, IdempotencyKey, Transition
from app.domain.runs import EventType, Footprint, Run, RunSpec, RunStatus
from app.domain.signals import StateChange
from app.errors import IdempotencyKeyTaken
from app.persistence.store import SqlRunStore

T = TypeVar("T")
T0 = datetime(2026, 1, 1, tzinfo=UTC)


@pytest.fixture
def writers(store_url: str) -> Iterator[tuple[SqlRunStore, SqlRunStore]]:
    """Two writers on one store (see the module docstring)."""
    if make_url(store_url).get_backend_name() == "sqlite":
        only = SqlRunStore(store_url)
        yield only, only
        only.close()
        return
    pair = SqlRunStore(store_url, shared=True), SqlRunStore(store_url, shared=True)
    yield pair
    for store in pair:
        store.close()


def _run(save_version: str = "2026-01-01T00.00.00.000Z") -> Run:
    return Run(
        run_id=str(uuid.uuid4()),
        save_version=save_version,
        status=RunStatus.QUEUED,
        spec=RunSpec(pipeline_names=("p",)),
        nodes=("a",),
        footprint=Footprint(),
        env=None,
        kedro_version="1.7.0",
        project_commit=None,
        queued_at=T0,
    )


def _at_once(jobs: list[Callable[[], T]]) -> list[T]:
    """Run ``jobs`` on threads of their own, released together."""
    start = threading.Barrier(len(jobs))

    def released(job: Callable[[], T]) -> T:
        start.wait()
        return job()

    with ThreadPoolExecutor(len(jobs)) as pool:
        return list(pool.map(released, jobs))


def test_events_of_one_run_from_two_writers_are_numbered_once_and_seen_in_order(
    writers: tuple[SqlRunStore, SqlRunStore],
) -> None:
    first, second = writers
    run = _run()
    first.insert_run(run)
    per_writer, per_batch = 20, 3
    done = threading.Event()
    seen: list[int] = []

    def write(store: SqlRunStore, node: str) -> None:
        for _ in range(per_writer):
            event = AppendEvent(run.run_id, EventType.NODE_STARTED, T0, node)
            store.write([event] * per_batch)

    def follow() -> None:
        # As a client follows a run: always from the last seq it saw. A seq that became
        # visible after a later one would be skipped here for good.
        while True:
            finished = done.is_set()
            after = seen[-1] if seen else 0
            seen.extend(event.seq for event in second.list_events(run.run_id, after, 1000))
            if finished:
                return

    follower = threading.Thread(target=follow)
    follower.start()
    try:
        _at_once([lambda: write(first, "a"), lambda: write(second, "b")])
    finally:
        done.set()
        follower.join()
    total = 1 + 2 * per_writer * per_batch  # and run_queued
    events = first.list_events(run.run_id, 0, 1000)
    assert [event.seq for event in events] == list(range(1, total + 1))
    assert [event.node for event in events].count("b") == per_writer * per_batch
    assert seen == list(range(1, total + 1))


def test_save_versions_from_two_writers_are_unique_and_increase_in_commit_order(
    writers: tuple[SqlRunStore, SqlRunStore],
) -> None:
    per_writer = 20
    done = threading.Event()
    order_seen: list[str] = []  # as a reader paging "newest first" would meet them

    def submit(store: SqlRunStore) -> list[Run]:
        # All in the same millisecond: only the clock row keeps them apart.
        return [store.insert_run(replace(_run(), save_version="")) for _ in range(per_writer)]

    def follow() -> None:
        known: set[str] = set()
        while True:
            finished = done.is_set()
            listed = first.list_runs([], None, None, 1000).runs
            # A run committed after another must never sort before it.
            fresh = sorted(run.save_version for run in listed if run.run_id not in known)
            if fresh and order_seen:
                assert fresh[0] > order_seen[-1], (fresh, order_seen[-1])
            order_seen.extend(fresh)
            known.update(run.run_id for run in listed)
            if finished:
                return

    first, second = writers
    follower = ThreadPoolExecutor(1)
    following = follower.submit(follow)
    try:
        inserted = _at_once([lambda: submit(first), lambda: submit(second)])
    finally:
        done.set()
        follower.shutdown(wait=True)
    following.result()  # re-raises what the follower found
    versions = [run.save_version for batch in inserted for run in batch]
    assert len(set(versions)) == 2 * per_writer
    assert sorted(order_seen) == sorted(versions) == order_seen
    for batch in inserted:  # each writer's own inserts, in its order
        assert [run.save_version for run in batch] == sorted(run.save_version for run in batch)


def test_state_changes_from_two_writers_get_ids_that_a_follower_never_skips(
    writers: tuple[SqlRunStore, SqlRunStore],
) -> None:
    per_writer = 10
    done = threading.Event()
    seen: list[StateChange] = []

    def run_through(store: SqlRunStore, owner: str) -> None:
        for _ in range(per_writer):
            run = store.insert_run(replace(_run(), save_version="", owner=owner))
            for target, event in [
                (RunStatus.RUNNING, EventType.RUN_STARTED),
                (RunStatus.SUCCEEDED, EventType.RUN_SUCCEEDED),
            ]:
                assert store.write([Transition(run.run_id, target, T0, event)]) == [True]

    def follow() -> None:
        while True:
            finished = done.is_set()
            seen.extend(second.changes_after(seen[-1].id if seen else 0, 1000))
            if finished:
                return

    first, second = writers
    follower = threading.Thread(target=follow)
    follower.start()
    try:
        _at_once([lambda: run_through(first, "alice"), lambda: run_through(second, "bob")])
    finally:
        done.set()
        follower.join()
    total = 2 * per_writer * 3
    assert [change.id for change in seen] == list(range(1, total + 1))
    assert first.last_change_id() == total
    by_run: dict[str, list[str]] = {}
    for change in seen:
        by_run.setdefault(change.run_id, []).append(change.status)
    assert set(map(tuple, by_run.values())) == {("queued", "running", "succeeded")}
    bobs = second.changes_after(0, 1000, owner="bob")
    assert len(bobs) == per_writer * 3
    assert {change.owner for change in bobs} == {"bob"}


def test_one_key_from_two_writers_at_once_stores_one_run_and_the_other_is_told(
    writers: tuple[SqlRunStore, SqlRunStore],
) -> None:
    live_since = T0 - timedelta(days=1)

    def submit(store: SqlRunStore, key: IdempotencyKey) -> str:
        run = replace(_run(), save_version="")
        try:
            store.insert_run(run, key=key, key_live_since=live_since)
        except IdempotencyKeyTaken:
            assert store.get_run(run.run_id) is None
            return "taken"
        return run.run_id

    first, second = writers
    for attempt in range(20):
        key = IdempotencyKey("alice", f"intent-{attempt}", "0" * 64)
        outcomes = _at_once([partial(submit, first, key), partial(submit, second, key)])
        assert sorted(outcomes).count("taken") == 1, outcomes
        [stored] = [outcome for outcome in outcomes if outcome != "taken"]
        assert first.find_key("alice", key.key, live_since) == ("0" * 64, stored)
    assert len(first.list_runs([], None, None, 100).runs) == 20

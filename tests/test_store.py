"""The run store's contract, on every database it supports (the ``store`` fixture runs
each test on SQLite and on PostgreSQL): conditional transitions, per-run event order,
paging."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from app.domain.ports import AppendEvent, IdempotencyKey, Transition
from app.domain.runs import EventType, FailureReason, Footprint, Run, RunError, RunSpec, RunStatus
from app.domain.save_versions import SaveVersionClock, format_save_version
from app.errors import IdempotencyKeyTaken
from app.persistence.store import SqlRunStore

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def _run(clock: SaveVersionClock, pipeline: str = "p") -> Run:
    return Run(
        run_id=str(uuid.uuid4()),
        save_version=clock.next(T0),
        status=RunStatus.QUEUED,
        spec=RunSpec(pipeline_names=(pipeline,), params={"x": [1, {"y": "z"}]}),
        nodes=("a", "b"),
        footprint=Footprint(writes=frozenset({"/out"})),
        env="local",
        kedro_version="1.7.0",
        project_commit=None,
        queued_at=T0,
    )


def test_a_run_round_trips_with_its_request(store: SqlRunStore) -> None:
    run = _run(SaveVersionClock())
    store.insert_run(run)
    assert store.get_run(run.run_id) == run
    assert [e.type for e in store.list_events(run.run_id, 0, 10)] == [EventType.RUN_QUEUED]


def test_transitions_are_conditional_and_terminal_states_final(store: SqlRunStore) -> None:
    run = _run(SaveVersionClock())
    store.insert_run(run)
    at = T0 + timedelta(seconds=1)
    error = RunError(FailureReason.ERROR, "ValueError", "boom")
    applied = store.write(
        [
            Transition(
                run.run_id, RunStatus.SUCCEEDED, at, EventType.RUN_SUCCEEDED
            ),  # not from queued
            Transition(run.run_id, RunStatus.RUNNING, at, EventType.RUN_STARTED),
            AppendEvent(run.run_id, EventType.NODE_STARTED, at, "a"),
            Transition(run.run_id, RunStatus.FAILED, at, EventType.RUN_FAILED, error=error),
            Transition(run.run_id, RunStatus.SUCCEEDED, at, EventType.RUN_SUCCEEDED),
            Transition(run.run_id, RunStatus.CANCELLED, at, EventType.RUN_CANCELLED),
        ]
    )
    assert applied == [False, True, True, True, False, False]
    stored = store.get_run(run.run_id)
    assert stored is not None
    assert stored.status is RunStatus.FAILED
    assert stored.error == error
    assert stored.started_at == at
    assert stored.finished_at == at
    events = store.list_events(run.run_id, 0, 100)
    assert [e.seq for e in events] == [1, 2, 3, 4]
    assert [e.type for e in events] == [
        EventType.RUN_QUEUED,
        EventType.RUN_STARTED,
        EventType.NODE_STARTED,
        EventType.RUN_FAILED,
    ]
    assert store.list_events(run.run_id, 2, 1)[0].seq == 3
    # Events of a run that is not stored are not stored either.
    stray = AppendEvent("no-such-run", EventType.NODE_STARTED, at, "a")
    assert store.write([stray, stray, AppendEvent(run.run_id, EventType.NODE_STARTED, at)]) == [
        False,
        False,
        True,
    ]
    assert [e.seq for e in store.list_events(run.run_id, 0, 100)] == [1, 2, 3, 4, 5]


def test_listing_pages_newest_first_and_filters(store: SqlRunStore) -> None:
    clock = SaveVersionClock()
    runs = [_run(clock, "even" if i % 2 == 0 else "odd") for i in range(7)]
    for run in runs:
        store.insert_run(run)
    page = store.list_runs([], "even", None, 2)
    assert [r.run_id for r in page.runs] == [runs[6].run_id, runs[4].run_id]
    assert page.next_cursor is not None
    rest = store.list_runs([], "even", page.next_cursor, 10)
    assert [r.run_id for r in rest.runs] == [runs[2].run_id, runs[0].run_id]
    assert rest.next_cursor is None
    assert store.list_runs([RunStatus.RUNNING], None, None, 10).runs == []
    assert store.last_save_version() == runs[-1].save_version
    assert [r.run_id for r in store.runs_in([RunStatus.QUEUED])] == [r.run_id for r in runs]


def test_the_schema_migrates_once(store_url: str) -> None:
    url = store_url
    first = SqlRunStore(url)
    run = _run(SaveVersionClock())
    first.insert_run(run)
    first.close()
    second = SqlRunStore(url)
    assert second.get_run(run.run_id) == run
    second.close()


def test_runs_are_listed_per_owner(store: SqlRunStore) -> None:
    clock = SaveVersionClock()
    alices = [replace(_run(clock), owner="alice") for _ in range(3)]
    bobs = [replace(_run(clock), owner="bob") for _ in range(2)]
    for run in alices + bobs:
        store.insert_run(run)
    assert store.get_run(bobs[0].run_id) == bobs[0]
    mine = store.list_runs([], None, None, 10, owner="alice").runs
    assert [r.run_id for r in mine] == [r.run_id for r in reversed(alices)]
    assert len(store.list_runs([], None, None, 10).runs) == 5  # no owner: everyone's


def test_a_claim_counts_an_attempt_and_a_requeue_takes_a_fresh_save_version(
    store: SqlRunStore,
) -> None:
    run = _run(SaveVersionClock())
    claim = Transition(run.run_id, RunStatus.RUNNING, T0, EventType.RUN_STARTED)
    store.insert_run(run, then=[claim])
    later = T0 + timedelta(seconds=5)
    requeue = Transition(
        run.run_id, RunStatus.QUEUED, later, EventType.RUN_REQUEUED, new_save_version=True
    )
    assert store.write([requeue]) == [True]
    stored = store.get_run(run.run_id)
    assert stored is not None
    assert (stored.status, stored.attempts) == (RunStatus.QUEUED, 1)
    retry_version = stored.current_save_version
    assert retry_version == format_save_version(later) != stored.save_version
    assert store.last_save_version() == retry_version  # as the clock resumes past retries
    store.write([Transition(run.run_id, RunStatus.RUNNING, T0, EventType.RUN_STARTED)])
    events = store.list_events(run.run_id, 0, 10)
    # The store says in the events which version each attempt runs under.
    assert [
        (e.type, e.data.get("save_version"), e.data.get("next_save_version")) for e in events
    ] == [
        (EventType.RUN_QUEUED, None, None),
        (EventType.RUN_STARTED, run.save_version, None),
        (EventType.RUN_REQUEUED, None, retry_version),
        (EventType.RUN_STARTED, retry_version, None),
    ]
    cancel = Transition(run.run_id, RunStatus.CANCELLING, T0, EventType.RUN_CANCEL_REQUESTED)
    # A cancelling run is never requeued: it ends cancelled.
    assert store.write([cancel, requeue]) == [True, False]
    stored = store.get_run(run.run_id)
    assert stored is not None
    assert (stored.status, stored.attempts) == (RunStatus.CANCELLING, 2)
    assert stored.current_save_version == retry_version


def test_save_versions_are_allocated_unique_and_increasing(store: SqlRunStore) -> None:
    given = _run(SaveVersionClock())  # 2026-01-01T00.00.00.000Z, chosen by the caller
    assert store.insert_run(given) == given
    same_moment = [
        store.insert_run(replace(_run(SaveVersionClock()), save_version="")) for _ in range(3)
    ]
    versions = [run.save_version for run in same_moment]
    # Queued in the millisecond of the given one: each 1 ms after the one before.
    assert versions == [
        "2026-01-01T00.00.00.001Z",
        "2026-01-01T00.00.00.002Z",
        "2026-01-01T00.00.00.003Z",
    ]
    assert [store.get_run(run.run_id) for run in same_moment] == same_moment
    later = replace(_run(SaveVersionClock()), save_version="", queued_at=T0 + timedelta(hours=1))
    assert store.insert_run(later).save_version == format_save_version(later.queued_at)


def test_every_status_change_is_in_the_feed_in_order(store: SqlRunStore) -> None:
    assert (store.last_change_id(), store.changes_after(0, 10)) == (0, [])
    clock = SaveVersionClock()
    alice, bob = replace(_run(clock), owner="alice"), replace(_run(clock), owner="bob")
    at = T0 + timedelta(seconds=1)
    claim = Transition(bob.run_id, RunStatus.RUNNING, at, EventType.RUN_STARTED)
    store.insert_run(alice)
    store.insert_run(bob, then=[claim])  # queued and claimed in one transaction
    done = Transition(bob.run_id, RunStatus.SUCCEEDED, at, EventType.RUN_SUCCEEDED)
    not_from_queued = Transition(alice.run_id, RunStatus.SUCCEEDED, at, EventType.RUN_SUCCEEDED)
    assert store.write(
        [done, not_from_queued, AppendEvent(bob.run_id, EventType.NODE_STARTED, at)]
    ) == [True, False, True]
    changes = store.changes_after(0, 10)
    assert [(c.id, c.run_id, c.status, c.owner) for c in changes] == [
        (1, alice.run_id, "queued", "alice"),
        (2, bob.run_id, "queued", "bob"),
        (3, bob.run_id, "running", "bob"),
        (4, bob.run_id, "succeeded", "bob"),
    ]
    assert [c.at for c in changes] == [T0, T0, at, at]
    assert store.last_change_id() == 4
    assert [c.id for c in store.changes_after(1, 2)] == [2, 3]
    assert [c.id for c in store.changes_after(0, 10, owner="alice")] == [1]
    assert store.changes_after(4, 10) == []


def test_a_live_key_is_never_replaced_and_an_expired_one_is(store: SqlRunStore) -> None:
    clock = SaveVersionClock()
    key = IdempotencyKey("alice", "intent", "a" * 64)
    first = store.insert_run(_run(clock), key=key, key_live_since=T0 - timedelta(days=1))
    for live_since in (None, T0, T0 - timedelta(hours=1)):  # the key, made at T0, is live
        second = _run(clock)
        with pytest.raises(IdempotencyKeyTaken):
            store.insert_run(second, key=key, key_live_since=live_since)
        assert store.get_run(second.run_id) is None  # nothing of it was stored
    assert store.find_key("alice", "intent", T0) == ("a" * 64, first.run_id)
    # Past its time to live, a new request with the key stores a new run under it.
    later = replace(_run(clock), queued_at=T0 + timedelta(days=2))
    again = IdempotencyKey("alice", "intent", "b" * 64)
    store.insert_run(later, key=again, key_live_since=T0 + timedelta(days=1))
    assert store.find_key("alice", "intent", T0) == ("b" * 64, later.run_id)
    assert store.get_run(first.run_id) is not None  # the old run stays; only its key went
    # One caller's key is not another's.
    bobs = _run(clock)
    store.insert_run(bobs, key=IdempotencyKey("bob", "intent", "c" * 64))
    assert store.find_key("bob", "intent", T0) == ("c" * 64, bobs.run_id)

"""Retention: finished runs past retention_days go with their events, logs and keys;
expired Idempotency-Keys go; active runs stay, however old. By the store (on SQLite and
PostgreSQL), by hand (``kedro-runs prune``) and by the service itself."""

from __future__ import annotations

import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from conftest import ServiceProcess

from app.domain.ports import AppendLogs, IdempotencyKey, Transition
from app.domain.reports import LogLine
from app.domain.retention import PruneCounts, RetentionPolicy, prune
from app.domain.runs import EventType, FailureReason, Footprint, Run, RunError, RunSpec, RunStatus
from app.domain.save_versions import SaveVersionClock
from app.persistence.store import SqlRunStore
from app.prune_command import older_than

NOW = datetime.now(UTC)
CLOCK = SaveVersionClock()
POLICY = RetentionPolicy(retention_days=30, key_ttl_seconds=86400)


def _seed(store: SqlRunStore, status: RunStatus, age: timedelta, key: str | None = None) -> str:
    """A run queued ``age`` ago that reached ``status`` then, with two log lines and,
    with ``key``, an Idempotency-Key recorded when it was queued."""
    at = NOW - age
    run = Run(
        run_id=str(uuid.uuid4()),
        save_version=CLOCK.next(at),
        status=RunStatus.QUEUED,
        spec=RunSpec(pipeline_names=("noop",)),
        nodes=("return_one",),
        footprint=Footprint(),
        env=None,
        kedro_version="1.7.0",
        project_commit=None,
        queued_at=at,
    )
    idempotency = IdempotencyKey("anonymous", key, "0" * 64) if key else None
    store.insert_run(run, key=idempotency)
    path = {
        RunStatus.QUEUED: [],
        RunStatus.RUNNING: [RunStatus.RUNNING],
        RunStatus.CANCELLING: [RunStatus.RUNNING, RunStatus.CANCELLING],
        RunStatus.SUCCEEDED: [RunStatus.RUNNING, RunStatus.SUCCEEDED],
        RunStatus.FAILED: [RunStatus.RUNNING, RunStatus.FAILED],
        RunStatus.CANCELLED: [RunStatus.CANCELLED],
    }[status]
    error = RunError(FailureReason.ERROR, "ValueError", "boom")
    events = {
        RunStatus.RUNNING: EventType.RUN_STARTED,
        RunStatus.CANCELLING: EventType.RUN_CANCEL_REQUESTED,
        RunStatus.SUCCEEDED: EventType.RUN_SUCCEEDED,
        RunStatus.FAILED: EventType.RUN_FAILED,
        RunStatus.CANCELLED: EventType.RUN_CANCELLED,
    }
    for target in path:
        failed = error if target is RunStatus.FAILED else None
        applied = store.write([Transition(run.run_id, target, at, events[target], error=failed)])
        assert applied == [True]
        if target is RunStatus.RUNNING:
            store.write([AppendLogs(run.run_id, tuple(_line(at, n) for n in range(2)))])
    return run.run_id


def _line(at: datetime, number: int) -> LogLine:
    return LogLine(at, "INFO", "kr_testproject.nodes", "return_one", f"line {number}")


def _exists(store: SqlRunStore, run_id: str) -> bool:
    return store.get_run(run_id) is not None


def _seed_mix(store: SqlRunStore) -> tuple[list[str], list[str]]:
    """(the runs a 30-day prune removes, the runs it keeps)."""
    old = timedelta(days=40)
    gone = [
        _seed(store, RunStatus.SUCCEEDED, old, key="old-key"),
        _seed(store, RunStatus.FAILED, old),
        _seed(store, RunStatus.CANCELLED, old),
    ]
    kept = [
        _seed(store, RunStatus.QUEUED, old),
        _seed(store, RunStatus.RUNNING, old),
        _seed(store, RunStatus.CANCELLING, old),
        _seed(store, RunStatus.SUCCEEDED, timedelta(days=2), key="expired-key"),
        _seed(store, RunStatus.SUCCEEDED, timedelta(hours=1), key="live-key"),
    ]
    return gone, kept


def test_a_prune_removes_exactly_old_finished_runs_and_expired_keys(store: SqlRunStore) -> None:
    gone, kept = _seed_mix(store)
    counted = store.count_prunable(
        POLICY.runs_finished_before(NOW), POLICY.keys_created_before(NOW)
    )
    assert all(_exists(store, run_id) for run_id in gone)  # counting removes nothing

    pruned = prune(store, POLICY, NOW, batch=2)  # two batches of runs, and a third

    # 3 runs, 2 or 3 events each (queued, started, end), 2 log lines each; 2 keys.
    assert pruned == PruneCounts(runs=3, events=8, logs=4, keys=2)
    assert counted == pruned
    changed = {change.run_id for change in store.changes_after(0, 1000)}
    for run_id in gone:
        assert not _exists(store, run_id)
        assert store.list_events(run_id, 0, 100) == []
        assert store.list_logs(run_id, 0, 0, 100) == ([], 0)
        assert run_id not in changed  # nor its state changes
    for run_id in kept:
        assert _exists(store, run_id)
        assert store.list_events(run_id, 0, 100) != []
        assert run_id in changed
    ever = NOW - timedelta(days=365)
    assert store.find_key("anonymous", "live-key", ever) is not None
    assert store.find_key("anonymous", "expired-key", ever) is None
    assert store.find_key("anonymous", "old-key", ever) is None
    assert prune(store, POLICY, NOW) == PruneCounts()  # nothing left to do
    forever = RetentionPolicy(retention_days=0, key_ttl_seconds=86400)
    assert prune(store, forever, NOW + timedelta(days=3650)).runs == 0


def _prune_command(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "app", "prune", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_the_prune_command_counts_prunes_and_leaves_an_owned_store_alone(
    tmp_path: Path, store_url: str
) -> None:
    store = SqlRunStore(store_url)
    gone, kept = _seed_mix(store)
    where = ["--project", str(tmp_path), "--database", store_url]

    refused = _prune_command(*where)  # this process owns the store, as a service would
    assert refused.returncode == 2
    assert "prunes it by itself" in refused.stderr
    store.close()

    dry = _prune_command(*where, "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert "would prune 3 finished run(s) (8 event(s), 4 log line(s))" in dry.stdout
    done = _prune_command(*where, "--older-than", "36h")  # also takes the 2-day-old run
    assert done.returncode == 0, done.stderr
    assert "pruned 4 finished run(s)" in done.stdout
    assert "and 2 expired idempotency key(s)" in done.stdout

    store = SqlRunStore(store_url)
    try:
        assert [r for r in [*gone, *kept] if _exists(store, r)] == kept[:3] + kept[4:]
    finally:
        store.close()


def test_the_prune_command_makes_no_store_where_there_is_none(tmp_path: Path) -> None:
    """A mistyped --state-dir is an error, not an empty store and "would prune 0"."""
    mistyped = tmp_path / "stat"
    for extra in ([], ["--dry-run"]):
        result = _prune_command("--project", str(tmp_path), "--state-dir", str(mistyped), *extra)
        assert result.returncode == 2, result.stdout
        assert "no run store at" in result.stderr
        assert str(mistyped / "runs.db") in result.stderr
    assert not mistyped.exists()


@pytest.mark.parametrize(
    ("text", "expected"),
    [("30d", timedelta(days=30)), ("12h", timedelta(hours=12)), ("1.5", timedelta(days=1.5))],
)
def test_older_than_reads_durations(text: str, expected: timedelta) -> None:
    assert older_than(text) == expected


def test_the_service_prunes_by_itself_and_never_an_active_run(project: Path) -> None:
    service = ServiceProcess(
        project,
        env={"KEDRO_RUNS_RETENTION_DAYS": "0.00003", "KEDRO_RUNS_PRUNE_INTERVAL_SECONDS": "0.5"},
    ).start()
    try:
        stuck = service.submit(pipeline_names=["stuck"])["run_id"]  # runs for an hour
        service.wait(stuck, {"running"})
        done = service.submit(pipeline_names=["noop"])["run_id"]
        assert service.wait(done)["status"] == "succeeded"
        # Past 0.00003 days (2.6 s) after it finished, the next prune removes it.
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if service.client.get(f"/runs/{done}").status_code == 404:
                break
            time.sleep(0.2)
        assert service.client.get(f"/runs/{done}").status_code == 404
        assert service.client.get(f"/runs/{done}/events").status_code == 404
        assert service.get(stuck)["status"] == "running"  # older than that, but active
    finally:
        service.stop()

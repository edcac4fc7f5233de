"""The run domain without I/O: transitions, conflicts, dispatch order, save versions,
redaction and params limits."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import pytest

from app import faults
from app.domain.dispatch import DispatchQueue, QueuedRun
from app.domain.limits import ParamsRejected, check_params, nested_params
from app.domain.policy import Attempt, lost_run_writes, retry_lost_attempt, write_for_report
from app.domain.ports import Transition
from app.domain.redaction import redact
from app.domain.runs import (
    TERMINAL_STATUSES,
    TRANSITIONS,
    EventType,
    FailureReason,
    Footprint,
    NodeStatus,
    Run,
    RunError,
    RunEvent,
    RunSpec,
    RunStatus,
    node_progress,
    sources_of,
)
from app.domain.save_versions import SaveVersionClock, format_save_version, parse_save_version


def test_terminal_states_have_no_way_out() -> None:
    for status in TERMINAL_STATUSES:
        assert TRANSITIONS[status] == frozenset()
    assert sources_of(RunStatus.RUNNING) == {RunStatus.QUEUED}
    assert RunStatus.SUCCEEDED not in sources_of(RunStatus.CANCELLED)


@pytest.mark.parametrize(
    ("left", "right", "conflict"),
    [
        (Footprint(writes=frozenset({"/d/a"})), Footprint(reads=frozenset({"/d/a"})), True),
        (Footprint(reads=frozenset({"/d/a"})), Footprint(writes=frozenset({"/d/a"})), True),
        (Footprint(writes=frozenset({"/d/a"})), Footprint(writes=frozenset({"/d/a"})), True),
        (Footprint(reads=frozenset({"/d/a"})), Footprint(reads=frozenset({"/d/a"})), False),
        (Footprint(writes=frozenset({"/d/a"})), Footprint(writes=frozenset({"/d/b"})), False),
        (
            Footprint(writes=frozenset({"/d/parts"})),
            Footprint(reads=frozenset({"/d/parts/1"})),
            True,
        ),
        (Footprint(writes=frozenset({"/d/ab"})), Footprint(reads=frozenset({"/d/a"})), False),
        (
            Footprint(versioned_writes=frozenset({"/m"})),
            Footprint(versioned_writes=frozenset({"/m"})),
            False,
        ),
        (Footprint(versioned_writes=frozenset({"/m"})), Footprint(reads=frozenset({"/m"})), True),
    ],
)
def test_footprint_conflicts(left: Footprint, right: Footprint, conflict: bool) -> None:
    assert left.conflicts_with(right) is conflict
    assert right.conflicts_with(left) is conflict


def _queued(version: str, writes: str) -> QueuedRun:
    return QueuedRun(version, f"run-{version}", Footprint(writes=frozenset({writes})))


def test_dispatch_keeps_submission_order_among_conflicting_runs() -> None:
    queue = DispatchQueue()
    for version, path in [("3", "/a"), ("1", "/a"), ("2", "/b"), ("4", "/a"), ("5", "/c")]:
        queue.enqueue(_queued(version, path))
    chosen = queue.startable(free_slots=8)
    assert [run.run_id for run in chosen] == ["run-1", "run-2", "run-5"]
    for run in chosen:
        queue.mark_running(run)
    assert queue.waiting_for("run-3") == ["run-1"]
    assert queue.waiting_for("run-4") == ["run-1", "run-3"]
    assert queue.startable(free_slots=8) == []
    queue.finish("run-1")
    assert [run.run_id for run in queue.startable(free_slots=8)] == ["run-3"]


def test_dispatch_respects_free_slots() -> None:
    queue = DispatchQueue()
    for index in range(5):
        queue.enqueue(_queued(str(index), f"/{index}"))
    assert [run.run_id for run in queue.startable(free_slots=2)] == ["run-0", "run-1"]
    assert queue.startable(free_slots=0) == []


def test_save_versions_are_kedro_timestamps_unique_and_increasing() -> None:
    clock = SaveVersionClock()
    moment = datetime(2026, 1, 2, 3, 4, 5, 678_901, tzinfo=UTC)
    versions = [clock.next(moment) for _ in range(1000)]
    assert versions[0] == "2026-01-02T03.04.05.678Z"
    assert versions == sorted(versions)
    assert len(set(versions)) == 1000
    assert parse_save_version(versions[-1]) > parse_save_version(versions[0])


def test_save_versions_continue_after_a_restart() -> None:
    last = format_save_version(datetime(2030, 1, 1, tzinfo=UTC))  # ahead of the wall clock
    assert SaveVersionClock(last).next() > last


@pytest.mark.parametrize(
    "secret",
    [
        "postgresql://admin:hunter2@db:5432/x",
        "https://bucket/key?X-Amz-Signature=hunter2",
        "host=db user=admin password=hunter2",
        "Authorization: Bearer hunter2hunter2",
        "aws_secret_access_key='hunter2'",
        '{"api_key": "hunter2"}',
    ],
)
def test_redaction_removes_credentials(secret: str) -> None:
    text = redact(f"failed: {secret} (retry)")
    assert "hunter2" not in text
    assert "<redacted>" in text


def test_redaction_is_fast_on_adversarial_input() -> None:
    import time

    started = time.perf_counter()
    redact("a://" + "b" * 100_000 + " password=" * 5_000)
    assert time.perf_counter() - started < 1.0


def test_params_within_limits_pass() -> None:
    check_params({"a": {"b": [1, 2.5, "x", None, True]}, "escaped": "$ {not} an interpolation"})


@pytest.mark.parametrize(
    "params",
    [
        {"a": "${b}"},
        {"a": float("nan")},
        {"a": float("inf")},
        {"a": object()},
        {"a": list(range(1001))},
        {"": 1},
    ],
)
def test_params_beyond_limits_fail(params: dict[str, object]) -> None:
    with pytest.raises(ParamsRejected):
        check_params(params)


def test_dotted_params_keys_are_paths_as_on_kedros_command_line() -> None:
    assert nested_params({"model.lr": 0.1, "model": {"seed": 1}, "x": [{"a.b": 2}]}) == {
        "model": {"lr": 0.1, "seed": 1},
        "x": [{"a": {"b": 2}}],
    }
    assert nested_params({"a": {"b.c": 1}, "a.b": {"d": 2}}) == {"a": {"b": {"c": 1, "d": 2}}}
    assert nested_params({"plain": {"kept": "as given"}}) == {"plain": {"kept": "as given"}}


@pytest.mark.parametrize(
    ("params", "needle"),
    [
        ({"a": 1, "a.b": 2}, "params.a - given twice"),
        ({"a.b": 2, "a": 1}, "params.a - given twice"),
        ({"a.b": 1, "a.b.c": 2}, "params.a.b - given twice"),
        ({"a": {"b": 1}, "a.b": 1}, "params.a.b - given twice"),
        ({"a..b": 1}, "non-empty names"),
        ({".a": 1}, "non-empty names"),
        ({"a" + ".a" * 100_000: 1}, "at most 16"),
        ({"a" + ".a" * 15: {"b": {"c": 1}}}, "deeper than 16"),
    ],
)
def test_dotted_params_keys_that_do_not_nest_cleanly_are_refused(
    params: dict[str, object], needle: str
) -> None:
    with pytest.raises(ParamsRejected, match=needle.replace(".", r"\.")):
        nested_params(params)


def test_a_new_run_starts_at_once_only_if_nothing_could_go_before_it() -> None:
    queue = DispatchQueue()
    assert queue.can_start_new(Footprint(writes=frozenset({"/a"})), free_slots=1)
    assert not queue.can_start_new(Footprint(writes=frozenset({"/a"})), free_slots=0)
    queue.enqueue(_queued("1", "/a"))
    # run-1 could take the free slot: the new run must queue behind it.
    assert not queue.can_start_new(Footprint(writes=frozenset({"/b"})), free_slots=1)
    queue.mark_running(queue.startable(1)[0])
    queue.enqueue(_queued("2", "/a"))  # blocked by run-1
    assert queue.can_start_new(Footprint(writes=frozenset({"/b"})), free_slots=1)
    assert not queue.can_start_new(Footprint(reads=frozenset({"/a"})), free_slots=1)


def test_a_lost_worker_means_interrupted_when_stopping_and_cancelled_after_a_cancel() -> None:
    from app.domain import reports
    from app.domain.ports import Transition
    from app.domain.runs import FailureReason

    lost = reports.RunFailed(
        "r",
        datetime(2026, 1, 1, tzinfo=UTC),
        FailureReason.WORKER_LOST,
        "WorkerLost",
        "exit code -9",
    )
    plain = write_for_report(lost, Attempt("r"))
    assert isinstance(plain, Transition)
    assert plain.target is RunStatus.FAILED
    assert plain.error is not None
    assert plain.error.reason is FailureReason.WORKER_LOST
    stopping = write_for_report(lost, Attempt("r", stopping=True))
    assert isinstance(stopping, Transition)
    assert stopping.error is not None
    assert stopping.error.reason is FailureReason.INTERRUPTED
    cancelled = write_for_report(lost, Attempt("r", cancel_requested=True))
    assert isinstance(cancelled, Transition)
    assert cancelled.target is RunStatus.CANCELLED


def _lost(reason: FailureReason) -> Transition:
    error = RunError(reason, "WorkerLost", "the worker died")
    return Transition("r", RunStatus.FAILED, datetime.now(UTC), EventType.RUN_FAILED, error=error)


def test_only_lost_runs_with_attempts_left_are_requeued() -> None:
    requeued = retry_lost_attempt(_lost(FailureReason.WORKER_LOST), Attempt("r", 1, 2))
    assert (requeued.target, requeued.event, requeued.new_save_version) == (
        RunStatus.QUEUED,
        EventType.RUN_REQUEUED,
        True,  # the store allocates it
    )
    assert requeued.event_data["reason"] == "worker_lost"
    assert retry_lost_attempt(_lost(FailureReason.INTERRUPTED), Attempt("r", 1, 3)).target is (
        RunStatus.QUEUED
    )
    for reason, attempts in [
        (FailureReason.WORKER_LOST, 2),  # no attempt left
        (FailureReason.ERROR, 1),  # the pipeline raised: never retried
        (FailureReason.TIMEOUT, 1),
    ]:
        move = _lost(reason)
        assert retry_lost_attempt(move, Attempt("r", attempts, 2)) is move
    assert RunStatus.QUEUED in TRANSITIONS[RunStatus.RUNNING]
    assert RunStatus.QUEUED not in TRANSITIONS[RunStatus.CANCELLING]


def test_crash_points_parse_with_an_occurrence() -> None:
    assert faults.parse("after_claim:3, after_insert_before_202") == {
        "after_claim": 3,
        "after_insert_before_202": 1,
    }
    assert faults.parse("") == {}
    for bad, match in [
        ("after_lunch", "unknown crash point"),
        ("after_claim:0", "1 or more"),
        ("after_claim:x", "invalid literal"),
    ]:
        with pytest.raises(ValueError, match=match):
            faults.parse(bad)


def test_node_progress_starts_again_with_each_attempt() -> None:
    at = datetime.now(UTC)
    run = Run(
        run_id="r",
        save_version="v1",
        status=RunStatus.RUNNING,
        spec=RunSpec(),
        nodes=("a", "b"),
        footprint=Footprint(),
        env=None,
        kedro_version="1.7.0",
        project_commit=None,
        queued_at=at,
        attempts=2,
        attempt_save_version="v2",
    )
    events = [
        RunEvent("r", 1, EventType.NODE_STARTED, at, "a"),
        RunEvent("r", 2, EventType.NODE_COMPLETED, at, "a"),
        RunEvent("r", 3, EventType.NODE_STARTED, at, "b"),
        RunEvent("r", 4, EventType.RUN_REQUEUED, at),
        RunEvent("r", 5, EventType.NODE_STARTED, at, "a"),
    ]
    assert [n.status for n in node_progress(run, events)] == [
        NodeStatus.RUNNING,
        NodeStatus.PENDING,
    ]
    assert run.current_save_version == "v2"


def test_recovery_gives_back_an_attempt_no_worker_took_whatever_max_attempts_says() -> None:
    claimed = Run(
        run_id="r",
        save_version="2026-01-01T00.00.00.000Z",
        status=RunStatus.RUNNING,
        spec=RunSpec(max_attempts=1),
        nodes=("n",),
        footprint=Footprint(),
        env=None,
        kedro_version="1.7.0",
        project_commit=None,
        queued_at=datetime.now(UTC),
        attempts=1,
        acknowledged_attempts=0,
    )
    taken = replace(claimed, run_id="t", acknowledged_attempts=1)
    given_back, lost = lost_run_writes(
        [claimed, taken], "crash", FailureReason.WORKER_LOST, datetime.now(UTC)
    )
    assert (given_back.target, given_back.attempt_given_back) == (RunStatus.QUEUED, True)
    # The first attempt's save version, unchanged.
    assert (given_back.save_version, given_back.new_save_version) == (None, False)
    assert given_back.event_data["reason"] == "not_handed_over"
    assert (lost.target, lost.attempt_given_back) == (RunStatus.FAILED, False)

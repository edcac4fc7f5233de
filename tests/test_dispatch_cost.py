"""Dispatch questions over a long queue cost linear work: the conflict index answers
exactly as the pairwise rule, and the work is counted in calls, not seconds."""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

from support import counted

from app.domain.conflicts import FootprintIndex
from app.domain.dispatch import DispatchQueue, QueuedRun
from app.domain.runs import Footprint


def _calls_made(work: Callable[[], Any]) -> tuple[Any, int]:
    """What ``work`` returns, and how many Python and C function calls it made."""
    return counted(work, lambda frame, event: event in {"call", "c_call"})


def _lines_run(work: Callable[[], Any]) -> tuple[Any, int]:
    """What ``work`` returns, and how many lines of Python it ran (a loop's body counts
    once per turn, where ``_calls_made`` sees no call)."""
    return counted(work, lambda frame, event: event == "line", lines=True)


def _random_key(rng: random.Random) -> str:
    # Few names and shallow paths, so equal keys, directories holding files and
    # trailing slashes all occur often.
    parts = [rng.choice("abc") for _ in range(rng.randint(1, 3))]
    return rng.choice(["/", ""]) + "/".join(parts) + rng.choice(["", "", "/"])


def _random_footprint(rng: random.Random) -> Footprint:
    def keys() -> frozenset[str]:
        return frozenset(_random_key(rng) for _ in range(rng.randint(0, 2)))

    return Footprint(reads=keys(), writes=keys(), versioned_writes=keys())


def test_the_index_answers_as_the_pairwise_rule() -> None:
    rng = random.Random(20261202)
    for _ in range(2000):
        indexed = [_random_footprint(rng) for _ in range(rng.randint(0, 4))]
        asked = _random_footprint(rng)
        expected = any(asked.conflicts_with(other) for other in indexed)
        assert FootprintIndex(indexed).conflicts_with(asked) is expected, (asked, indexed)


def _long_queue(queued: int) -> DispatchQueue:
    """``queued`` runs: every third writes the shared file one run is writing now, every
    third writes a partition of a shared directory (they wait for one another), the rest
    write files of their own (they wait for a slot only)."""
    queue = DispatchQueue()
    running = QueuedRun("0", "running", Footprint(writes=frozenset({"/data/shared.csv"})))
    queue.enqueue(running)
    queue.mark_running(running)
    for index in range(queued):
        kind = index % 3
        writes = {
            0: "/data/shared.csv",
            1: f"/data/parts/{index}.csv" if index % 2 else "/data/parts",
            2: f"/data/own/{index}.csv",
        }[kind]
        footprint = Footprint(reads=frozenset({"/data/raw.csv"}), writes=frozenset({writes}))
        queue.enqueue(QueuedRun(f"{index + 1:06d}", f"run-{index}", footprint))
    return queue


def test_the_waiting_on_conflicts_count_is_right_and_linear_in_the_queue() -> None:
    small, large = _long_queue(500), _long_queue(1000)
    blocked_small, calls_small = _calls_made(lambda: small.blocked_count)
    blocked_large, calls_large = _calls_made(lambda: large.blocked_count)
    for queue, blocked, queued in ((small, blocked_small, 500), (large, blocked_large, 1000)):
        pairwise = sum(1 for index in range(queued) if queue.waiting_for(f"run-{index}"))
        assert blocked == pairwise
    # 1,000 queued: all but the one-per-file runs and the first partition writer wait.
    assert blocked_large == 1000 - 333 - 1
    # Linear: twice the queue, about twice the calls (a pairwise count makes it four).
    assert calls_large < 2.3 * calls_small
    assert calls_large < 100 * 1000


def test_choosing_runs_to_start_is_linear_in_the_queue() -> None:
    small, large = _long_queue(500), _long_queue(1000)
    chosen_small, calls_small = _calls_made(lambda: small.startable(free_slots=1000))
    chosen_large, calls_large = _calls_made(lambda: large.startable(free_slots=1000))
    # The first partition writer, and every run with a file of its own.
    assert len(chosen_small) == 1 + 166
    assert [run.run_id for run in chosen_large][:3] == ["run-1", "run-2", "run-5"]
    assert len(chosen_large) == 1 + 333
    assert calls_large < 2.3 * calls_small


def test_a_run_that_is_not_queued_waits_for_nothing_at_no_cost() -> None:
    # GET /runs asks this of every run on a page (up to 200), most of them finished.
    queue = _long_queue(1000)
    waits, lines = _lines_run(lambda: queue.waiting_for("finished-long-ago"))
    assert waits == []
    assert lines < 10
    assert queue.is_queued("run-7")
    assert queue.waiting_for("run-3") == ["running", "run-0"]
    queue.remove_queued("run-7")
    assert not queue.is_queued("run-7")
    assert queue.waiting_for("run-7") == []

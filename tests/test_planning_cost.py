"""Planning a request costs what the request is worth, and never on the event loop:
unknown names get bounded "did you mean" work, and /healthz answers meanwhile."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import Any

import httpx
from conftest import ServiceProcess
from support import counted

from app.kedro_bridge.suggestions import (
    MAX_NAMES_WITH_HINTS,
    MAX_SCORED,
    Suggestions,
    close_matches,
)

WIDE_NODES = 2000

# Appended to the project copy's pipeline_registry.py: one more pipeline, of
# WIDE_NODES independent nodes, beside the project's own.
_WIDE_REGISTRY = f"""

_project_pipelines = register_pipelines


def register_pipelines() -> dict[str, Pipeline]:
    wide = Pipeline(
        [
            node(nodes.return_one, None, f"wide_out_{{i:04d}}", name=f"wide_{{i:04d}}")
            for i in range({WIDE_NODES})
        ]
    )
    return {{**_project_pipelines(), "wide": wide}}
"""


def _difflib_scores(work: Callable[[], Any]) -> tuple[Any, int]:
    """What ``work`` returns, and how many candidates difflib scored meanwhile."""

    def scores(frame: FrameType, event: str) -> bool:
        code = frame.f_code
        return event == "call" and code.co_name == "set_seq1" and "difflib" in code.co_filename

    return counted(work, scores)


def _hints_for(unknown: list[str], known: set[str]) -> list[list[str]]:
    suggestions = Suggestions()
    return [suggestions.for_name(name, known) for name in unknown]


def test_suggestion_work_is_bounded_whatever_the_number_of_unknown_names() -> None:
    known = {f"wide_{i:04d}" for i in range(WIDE_NODES)}
    few = [f"wide_x{i:04d}" for i in range(20)]
    many = [f"wide_x{i:04d}" for i in range(1000)]
    hints_few, scored_few = _difflib_scores(lambda: _hints_for(few, known))
    hints_many, scored_many = _difflib_scores(lambda: _hints_for(many, known))
    # The first names get hints, later ones none, and 1,000 cost what 20 cost.
    assert all(hints_many[:MAX_NAMES_WITH_HINTS])
    assert not any(hints_many[MAX_NAMES_WITH_HINTS:])
    assert hints_many[:MAX_NAMES_WITH_HINTS] == hints_few[:MAX_NAMES_WITH_HINTS]
    assert scored_many == scored_few
    # And each hint scores a bounded set of candidates, not all 2,000 (difflib calls
    # set_seq1 once more per hint, building its matcher).
    assert scored_many <= MAX_NAMES_WITH_HINTS * (MAX_SCORED + 1)


def test_hints_still_find_the_name_meant() -> None:
    known = {f"wide_{i:04d}" for i in range(WIDE_NODES)} | {"prepare", "finish"}
    assert close_matches("wide_1234x", known)[0] == "wide_1234"
    assert close_matches("prepaer", known) == ["prepare"]
    assert close_matches("zzzzzzzz", known) == []


def _poll_health(service: ServiceProcess, stop: threading.Event, waits: list[float]) -> None:
    """Ask /healthz every 50 ms until ``stop``; record how long each answer took."""
    with httpx.Client(base_url=service.url, timeout=180) as client:
        while not stop.is_set():
            started = time.monotonic()
            assert client.get("/healthz").status_code == 200
            waits.append(time.monotonic() - started)
            time.sleep(0.05)


def test_unknown_node_names_against_a_wide_pipeline_keep_the_service_responsive(
    project: Path,
) -> None:
    registry = project / "src" / "kr_testproject" / "pipeline_registry.py"
    registry.write_text(registry.read_text() + _WIDE_REGISTRY)
    service = ServiceProcess(project, workers=1).start()
    try:
        unknown = [f"wide_x{i:04d}" for i in range(1000)]
        waits: list[float] = []
        stop = threading.Event()
        poller = threading.Thread(target=_poll_health, args=(service, stop, waits))
        poller.start()
        body = {"pipeline_names": ["wide"], "node_names": unknown}
        try:
            # Patient: without the bounds, each request took a minute on a loaded machine.
            with httpx.Client(base_url=service.url, timeout=180) as client:
                answers = [client.post(path, json=body) for path in ("/runs", "/runs/plan")]
        finally:
            stop.set()
            poller.join(timeout=200)
        # /healthz never waited for the planning (it waited 68 s when planning ran on
        # the event loop); a few seconds of slack for a loaded machine.
        assert waits
        assert max(waits) < 5, waits
        for answer in answers:
            assert answer.status_code == 422, answer.text
            errors = answer.json()["errors"]
            # Every unknown name is reported; the first few with hints.
            assert [error["loc"][-1] for error in errors] == list(range(1000))
            assert "did you mean 'wide_0000'" in errors[0]["msg"]
            assert "did you mean" not in errors[-1]["msg"]
    finally:
        service.stop()

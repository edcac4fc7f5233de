"""How the service process starts and stops: signals, exit statuses, and start-up
refusals that are one line (a second service on the same store, a taken port)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
from conftest import ServiceProcess

# Far longer than any bound the tests wait: a stop that waited it out is unmistakable.
LONG_DRAIN = {"KEDRO_RUNS_DRAIN_SECONDS": "60"}
# A stop at once takes under a second here; uvicorn's wait for open requests is 10 s.
STOP_NOW_BOUND = 8


def _stop_with(
    service: ServiceProcess, *signals: signal.Signals, group: bool = False
) -> tuple[int, float]:
    """Send ``signals`` (0.5 s apart, the first once draining shows) to the service, or
    with ``group`` to its whole process group, workers too (as Ctrl-C in a terminal
    does); the exit status and the seconds from the last signal to the exit."""
    assert service.process is not None
    for number, sent in enumerate(signals):
        if group:
            os.killpg(service.process.pid, sent)
        else:
            service.process.send_signal(sent)
        if number + 1 < len(signals):
            deadline = time.monotonic() + 10
            while service.client.get("/readyz").status_code == 200:
                assert time.monotonic() < deadline, "not draining after the first signal"
                time.sleep(0.05)
            time.sleep(0.5)
    last = time.monotonic()
    status = service.process.wait(timeout=45)
    service.client.close()
    return status, time.monotonic() - last


def _stuck_runs(service: ServiceProcess) -> tuple[str, str]:
    """Two running runs that would never end by themselves: one without retry, one that
    may be retried."""
    once = service.submit(pipeline_names=["stuck"], params={"sleep_forever": 600})["run_id"]
    retried = service.submit(
        pipeline_names=["stuck"], params={"sleep_forever": 600}, max_attempts=2
    )["run_id"]
    service.wait(once, {"running"})
    service.wait(retried, {"running"})
    return once, retried


def _assert_stopped_as_shutdown_does(project: Path, once: str, retried: str) -> None:
    after = ServiceProcess(project, workers=1).start()
    try:
        run = after.get(once)
        assert run["status"] == "failed"
        assert run["error"]["reason"] == "interrupted"
        requeued = [e for e in after.events(retried) if e["type"] == "run_requeued"]
        assert [e["data"]["reason"] for e in requeued] == ["interrupted"]
    finally:
        after.stop()


def test_a_second_sigterm_ends_the_drain_at_once_and_exits_0(project: Path) -> None:
    service = ServiceProcess(project, workers=2, env=LONG_DRAIN).start()
    once, retried = _stuck_runs(service)
    with ThreadPoolExecutor(1) as pool:
        # A long poll in flight answers when the service stops, not when its wait is up.
        long_poll = pool.submit(httpx.get, f"{service.url}/runs/{once}?wait=60", timeout=90)
        status, seconds = _stop_with(service, signal.SIGTERM, signal.SIGTERM)
        answer = long_poll.result(timeout=30)
    assert status == 0
    assert seconds < STOP_NOW_BOUND, f"the second SIGTERM took {seconds:.1f} s (drain is 60 s)"
    assert answer.status_code == 200
    assert answer.json()["status"] == "running"  # as it was when the stop began
    _assert_stopped_as_shutdown_does(project, once, retried)


def test_ctrl_c_stops_at_once_and_exits_130(project: Path) -> None:
    service = ServiceProcess(project, workers=2, env=LONG_DRAIN).start()
    once, retried = _stuck_runs(service)
    status, seconds = _stop_with(service, signal.SIGINT, group=True)
    assert status == 130
    assert seconds < STOP_NOW_BOUND, f"SIGINT took {seconds:.1f} s (drain is 60 s)"
    log = service.log_path.read_text()
    assert "Traceback" not in log
    assert "KeyboardInterrupt" not in log
    _assert_stopped_as_shutdown_does(project, once, retried)


def test_sigint_during_a_drain_stops_at_once_and_exits_130(project: Path) -> None:
    service = ServiceProcess(project, workers=1, env=LONG_DRAIN).start()
    service.wait(
        service.submit(pipeline_names=["stuck"], params={"sleep_forever": 600})["run_id"],
        {"running"},
    )
    status, seconds = _stop_with(service, signal.SIGTERM, signal.SIGINT)
    assert status == 130
    assert seconds < STOP_NOW_BOUND, f"SIGINT took {seconds:.1f} s (drain is 60 s)"


def _serve(project: Path, *args: str) -> tuple[subprocess.CompletedProcess[str], float]:
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-m", "app", "serve", "--project", str(project), *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "KEDRO_RUNS_LOG_LEVEL": "info"},
    )
    return result, time.monotonic() - started


def test_a_second_service_on_the_same_store_says_so_in_one_line(
    project: Path, store_url: str
) -> None:
    store = ["--database", store_url]
    first = ServiceProcess(project, workers=1, extra_args=store).start()
    try:
        second, _ = _serve(project, "--port", "0", "--workers", "1", *store)
        assert second.returncode == 1
        errors = [line for line in second.stderr.splitlines() if "INFO" not in line]
        assert len(errors) <= 2, second.stderr
        assert "Traceback" not in second.stderr
        assert errors[-1].startswith("kedro-runs: ")
        assert "is in use by another kedro-runs process" in errors[-1]
        assert first.client.get("/readyz").status_code == 200  # the first is unharmed
    finally:
        first.stop()


def test_a_taken_port_says_so_in_one_line_before_anything_starts(
    project: Path, tmp_path: Path
) -> None:
    first = ServiceProcess(project, workers=1).start()
    state = tmp_path / "second-state"
    try:
        second, seconds = _serve(
            project, "--port", str(first.port), "--state-dir", str(state), "--workers", "1"
        )
        assert second.returncode == 1
        assert second.stderr.splitlines() == [
            f"kedro-runs: cannot listen on 127.0.0.1:{first.port}: the address is in use "
            "(another kedro-runs, or another program); stop it or pass another --port"
        ]
        # Refused before the store was opened, the project loaded or a worker spawned.
        assert not state.exists()
        assert seconds < 30
    finally:
        first.stop()

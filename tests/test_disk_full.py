"""A full disk under the state directory: submissions get 503, nothing is half-written,
and the service takes runs again, without a restart, once there is space. PostgreSQL's
disk_full is told apart as well."""

from __future__ import annotations

import contextlib
import errno
import os
import signal
import sqlite3
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from conftest import ServiceProcess, ledger
from sqlalchemy.exc import DBAPIError, OperationalError

from app.errors import StorageFull
from app.persistence.engine import is_storage_full
from app.persistence.failures import raise_retry_later


@pytest.fixture
def small_state_dir(tmp_path: Path) -> Iterator[Path]:
    """A 16 MiB tmpfs to serve as --state-dir; skips where mounting is not allowed."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs for a full disk needs root")
    state = tmp_path / "state"
    state.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", str(state)],
        capture_output=True,
        text=True,
        check=False,
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs on this machine: {mounted.stderr.strip()}")
    try:
        yield state
    finally:
        if subprocess.run(["umount", str(state)], check=False).returncode != 0:
            subprocess.run(["umount", "-l", str(state)], check=False)


def _fill(path: Path) -> None:
    """Write ``path`` until the file system has no byte left."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o644)
    try:
        for size in (1 << 20, 1 << 12, 1):
            chunk = b"\0" * size
            with contextlib.suppress(OSError):
                while True:
                    os.write(fd, chunk)
        with pytest.raises(OSError, match="No space left") as full:
            os.write(fd, b"\0")
        assert full.value.errno == errno.ENOSPC
    finally:
        os.close(fd)


def test_a_full_disk_refuses_submissions_and_the_service_recovers_when_space_returns(
    project: Path, small_state_dir: Path
) -> None:
    filler = small_state_dir / "filler"
    service = ServiceProcess(project, workers=1, extra_args=["--state-dir", str(small_state_dir)])
    service.start()
    try:
        before = service.submit(pipeline_names=["noop"])["run_id"]
        assert service.wait(before)["status"] == "succeeded"
        slow = service.submit(pipeline_names=["slow"], params={"slow": {"seconds": 0.5}})
        service.wait(slow["run_id"], {"running"})
        queued = service.submit(pipeline_names=["noop"])["run_id"]  # waits for the worker
        _fill(filler)

        response = service.client.post("/runs", json={"pipeline_names": ["noop"]})
        assert response.status_code == 503, response.text
        assert response.headers["content-type"] == "application/problem+json"
        assert int(response.headers["retry-after"]) > 0
        assert response.json()["type"].endswith("storage-full")
        # Nothing half-written, and reads go on.
        listed = service.client.get("/runs", params={"limit": 200}).json()["items"]
        assert sorted(run["run_id"] for run in listed) == sorted([before, slow["run_id"], queued])
        assert service.get(before)["status"] == "succeeded"

        # The slow run ends while the disk is full: its end cannot be recorded yet.
        marker = f"{slow['save_version']} slow_step_3"
        deadline = time.monotonic() + 30
        while marker not in ledger(project) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert marker in ledger(project)
        assert service.get(slow["run_id"])["status"] == "running"

        filler.unlink()
        assert service.wait(slow["run_id"], timeout=30)["status"] == "succeeded"
        assert service.wait(queued, timeout=30)["status"] == "succeeded"
        after = service.submit(pipeline_names=["noop"])["run_id"]
        assert service.wait(after)["status"] == "succeeded"
        with contextlib.closing(sqlite3.connect(small_state_dir / "runs.db")) as connection:
            assert connection.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    finally:
        filler.unlink(missing_ok=True)
        service.stop()


@pytest.mark.parametrize("drain_seconds", [60, 2], ids=["during-the-drain", "after-it"])
def test_a_second_sigterm_stops_even_while_the_disk_is_full_and_nothing_is_lost(
    project: Path, small_state_dir: Path, drain_seconds: int
) -> None:
    """A first SIGTERM waits for the store (it keeps every report); a second one does
    not, whether the drain is still on or over (the app's shutdown then waits for the
    store): the process exits, and the next start recovers what could not be recorded."""
    filler = small_state_dir / "filler"
    args = ["--state-dir", str(small_state_dir)]
    env = {"KEDRO_RUNS_DRAIN_SECONDS": str(drain_seconds)}
    service = ServiceProcess(project, workers=1, extra_args=args, env=env)
    service.start()
    try:
        slow = service.submit(pipeline_names=["slow"], params={"slow": {"seconds": 0.5}})
        service.wait(slow["run_id"], {"running"})
        queued = service.submit(pipeline_names=["noop"])["run_id"]
        _fill(filler)
        assert service.process is not None
        service.process.send_signal(signal.SIGTERM)
        # The run ends (or is stopped) while the disk is full; its end cannot be
        # recorded, so the stop would wait for space.
        marker = f"{slow['save_version']} slow_step_3"
        deadline = time.monotonic() + 30
        while marker not in ledger(project) and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(drain_seconds + 2 if drain_seconds < 10 else 1)
        assert service.process.poll() is None  # still waiting for the store
        service.process.send_signal(signal.SIGTERM)
        assert service.process.wait(timeout=20) == 0
    finally:
        filler.unlink(missing_ok=True)
        service.stop()

    again = ServiceProcess(project, workers=1, extra_args=args)
    again.start()
    try:
        # Its end was never recorded: after the crash-like stop it is a lost worker's run.
        ended = again.wait(slow["run_id"])
        assert ended["status"] == "failed", ended
        assert ended["error"]["reason"] == "worker_lost"
        assert again.wait(queued)["status"] == "succeeded"
    finally:
        again.stop()


def _as_sqlalchemy_raises_it(driver_error: Exception) -> Exception:
    """``driver_error`` wrapped as SQLAlchemy wraps what a psycopg cursor raises."""
    return DBAPIError.instance("INSERT INTO runs ...", {}, driver_error, psycopg.Error)


def test_postgresql_disk_full_is_recognised_from_psycopg_3() -> None:
    full = psycopg.errors.DiskFull("could not extend file: No space left on device")
    assert full.sqlstate == "53100"
    assert not hasattr(full, "pgcode")  # psycopg2's name; what the check once relied on
    wrapped = _as_sqlalchemy_raises_it(full)
    assert isinstance(wrapped, OperationalError)
    assert is_storage_full(wrapped)
    assert is_storage_full(full)
    # The store tells the caller to retry later, as for SQLite's full disk.
    with pytest.raises(StorageFull, match="disk is full"):
        raise_retry_later(wrapped)


def test_other_postgresql_errors_are_not_a_full_disk() -> None:
    for other in (
        psycopg.errors.UniqueViolation("duplicate key"),
        psycopg.errors.InsufficientResources("out of memory"),  # 53000: the same class
        psycopg.errors.DataError("PostgreSQL text fields cannot contain NUL (0x00) bytes"),
    ):
        assert not is_storage_full(_as_sqlalchemy_raises_it(other))

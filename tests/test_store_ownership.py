"""Who may open a store: one service alone (embedded mode) or cluster replicas together
(shared mode), never both. On SQLite a file lock that every name of the file meets; on
PostgreSQL an advisory lock held for the store's life."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import psycopg
import pytest
from sqlalchemy.engine import make_url

from app.errors import StartupRefused
from app.persistence.ownership import OWNER_LOCK, StoreInUse
from app.persistence.store import SqlRunStore

IN_USE = "in use by another kedro-runs process"


def test_a_store_file_has_one_owner(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'runs.db'}"
    owner = SqlRunStore(url)
    with pytest.raises(StoreInUse, match=IN_USE):
        SqlRunStore(url)
    owner.close()
    SqlRunStore(url).close()  # free again once the owner closed it


def test_every_spelling_of_a_store_file_has_the_one_owner(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    database = tmp_path / "state" / "runs.db"
    owner = SqlRunStore(f"sqlite:///{database}")
    (tmp_path / "link.db").symlink_to(database)
    (tmp_path / "linked-state").symlink_to(database.parent)
    (tmp_path / "hard.db").hardlink_to(database)  # its own name, its own -wal: one file still
    monkeypatch.chdir(tmp_path)  # so relative spellings can be tried; no stray files here
    spellings = [
        f"sqlite:///{tmp_path / 'link.db'}",
        f"sqlite:///{tmp_path / 'hard.db'}",
        f"sqlite:///file:{tmp_path / 'hard.db'}?uri=true",
        f"sqlite:///{tmp_path / 'linked-state' / 'runs.db'}",
        f"sqlite:///{tmp_path}/./state/../state/runs.db",
        "sqlite:///state/runs.db",
        f"sqlite:///file:{database}?uri=true",
        f"sqlite:///file:{database}?mode=rw&uri=true",
        "sqlite:///file:state/runs.db?uri=true",
    ]
    for url in spellings:
        with pytest.raises(StoreInUse, match=IN_USE):
            SqlRunStore(url)
    owner.close()
    assert sorted(path.name for path in tmp_path.iterdir()) == [
        "hard.db",
        "link.db",
        "linked-state",
        "state",
    ]
    second = SqlRunStore(f"sqlite:///file:{database}?uri=true")  # the URI form works as a store
    second.close()


def test_a_sqlite_store_cannot_be_shared(tmp_path: Path) -> None:
    with pytest.raises(StartupRefused, match="shared \\(cluster\\) mode needs PostgreSQL"):
        SqlRunStore(f"sqlite:///{tmp_path / 'runs.db'}", shared=True)
    assert not (tmp_path / "runs.db").exists()  # refused before anything was made


def _holders(url: str) -> list[str]:
    """The modes in which sessions hold the owner lock of the database at ``url``."""
    conninfo = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    high, low = (OWNER_LOCK >> 32) & 0xFFFFFFFF, OWNER_LOCK & 0xFFFFFFFF
    with psycopg.connect(conninfo) as probe:
        rows = probe.execute(
            "SELECT mode FROM pg_locks WHERE locktype = 'advisory' AND granted"
            " AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
            " AND classid = %s AND objid = %s AND objsubid = 1",
            (high, low),
        ).fetchall()
    return sorted(str(row[0]) for row in rows)


def test_a_postgresql_store_has_one_owner_in_embedded_mode(postgres_url: str) -> None:
    owner = SqlRunStore(postgres_url)
    assert _holders(postgres_url) == ["ExclusiveLock"]
    with pytest.raises(StoreInUse, match=f"{IN_USE}; stop it or pass another --database"):
        SqlRunStore(postgres_url)
    assert _holders(postgres_url) == ["ExclusiveLock"]  # the owner's, still
    owner.close()
    assert _holders(postgres_url) == []  # given up by the time close returns
    SqlRunStore(postgres_url).close()  # free again once the owner closed it


def test_replicas_share_a_store_that_no_embedded_service_may_join(postgres_url: str) -> None:
    replicas = [SqlRunStore(postgres_url, shared=True) for _ in range(2)]
    assert _holders(postgres_url) == ["ShareLock", "ShareLock"]
    with pytest.raises(StoreInUse, match=f"{IN_USE} \\(cluster replicas share it"):
        SqlRunStore(postgres_url)
    for replica in replicas:
        replica.close()
    embedded = SqlRunStore(postgres_url)
    try:
        with pytest.raises(StoreInUse, match=f"{IN_USE} \\(a service in embedded mode owns it"):
            SqlRunStore(postgres_url, shared=True)
    finally:
        embedded.close()
    SqlRunStore(postgres_url, shared=True).close()


def _owner_pids(url: str) -> list[int]:
    """The backends holding the owner lock."""
    admin = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(admin, autocommit=True) as connection:
        rows = connection.execute(
            "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted"
            " AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
            " AND classid = %s AND objid = %s",
            ((OWNER_LOCK >> 32) & 0xFFFFFFFF, OWNER_LOCK & 0xFFFFFFFF),
        ).fetchall()
    return [int(row[0]) for row in rows]


def _terminate(url: str, pids: list[int]) -> None:
    admin = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(admin, autocommit=True) as connection:
        for pid in pids:
            connection.execute("SELECT pg_terminate_backend(%s)", (pid,))


def _eventually(check: Callable[[], bool], seconds: float = 15) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.1)
    return False


def test_an_owner_lock_lost_with_its_session_is_taken_again(postgres_url: str) -> None:
    store = SqlRunStore(postgres_url)
    try:
        (first,) = _owner_pids(postgres_url)
        _terminate(postgres_url, [first])  # a restart, a failover, a proxy: the lock goes
        assert _eventually(lambda: len(_owner_pids(postgres_url)) == 1)
        assert _owner_pids(postgres_url) != [first]
        with pytest.raises(StoreInUse):
            SqlRunStore(postgres_url)
    finally:
        store.close()
    assert _owner_pids(postgres_url) == []


def test_a_service_whose_lost_owner_lock_was_taken_by_another_stops(
    project: Path, postgres_url: str
) -> None:
    from conftest import ServiceProcess

    service = ServiceProcess(project, env={"KEDRO_RUNS_DATABASE": postgres_url}).start()
    try:
        _terminate(postgres_url, _owner_pids(postgres_url))
        intruder = SqlRunStore(postgres_url)  # takes the lock in the gap
        try:
            assert service.process is not None
            service.process.wait(timeout=30)  # it stops by itself
            assert "owner lock was lost and taken" in service.log_path.read_text()
        finally:
            intruder.close()
    finally:
        service.stop()

"""Who may open a store: one service alone (embedded mode) or cluster replicas together
(shared mode), never both. On SQLite a file lock that every name of the file meets; on
PostgreSQL an advisory lock held for the store's life."""

from __future__ import annotations

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

"""The PostgreSQL the tests use: each way of having one works, so none rots unseen
(the throwaway server is the one a machine without a running server depends on)."""

from __future__ import annotations

import socket

import psycopg
import pytest
from postgres import URL_VARIABLE, PostgresServer, ThrowawayServer, find_server, no_server_outcome


def _accepts(port: int) -> bool:
    with socket.socket() as probe:
        probe.settimeout(1)
        return probe.connect_ex(("127.0.0.1", port)) == 0


def test_a_throwaway_server_starts_serves_a_fresh_database_and_stops() -> None:
    throwaway = ThrowawayServer.start()
    server = PostgresServer(throwaway.admin, "a throwaway server", throwaway)
    try:
        with server.database() as url:
            assert url.startswith("postgresql+psycopg://postgres@127.0.0.1:")
            name = url.rsplit("/", 1)[1]
            with psycopg.connect(url.replace("+psycopg", "")) as connection:
                row = connection.execute("SELECT current_database(), current_setting('fsync')")
                assert row.fetchone() == (name, "off")
        with psycopg.connect(server.database_url("postgres").replace("+psycopg", "")) as admin:
            left = admin.execute("SELECT count(*) FROM pg_database WHERE datname = %s", (name,))
            assert left.fetchone() == (0,)  # dropped after the block
    finally:
        server.stop()
    assert not _accepts(throwaway.port)
    assert not throwaway.directory.exists()


def test_the_url_variable_comes_first_and_a_bad_one_is_reported(
    postgres_server: PostgresServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(URL_VARIABLE, postgres_server.database_url("postgres"))
    given, reasons = find_server()
    assert given is not None
    assert (given.origin, reasons) == (f"${URL_VARIABLE}", [])

    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))  # a port nothing listens on
    port = closed.getsockname()[1]
    monkeypatch.setenv(URL_VARIABLE, f"postgresql://postgres@127.0.0.1:{port}/postgres")
    try:
        fallback, reasons = find_server()
    finally:
        closed.close()
    assert fallback is not None
    try:
        assert fallback.origin != f"${URL_VARIABLE}"
        assert reasons[0].startswith(f"${URL_VARIABLE}: postgresql+psycopg://postgres@")
    finally:
        fallback.stop()


def test_without_a_server_tests_skip_but_fail_under_ci() -> None:
    reasons = ["127.0.0.1:5432: refused", "throwaway server: initdb and pg_ctl are not on PATH"]
    message, must_fail = no_server_outcome(reasons, {})
    assert message == "no PostgreSQL server could be had: " + "; ".join(reasons)
    assert not must_fail
    assert no_server_outcome(reasons, {"CI": "true"})[1]
    assert not no_server_outcome(reasons, {"CI": "false"})[1]

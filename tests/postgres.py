"""A PostgreSQL server for the tests, and a fresh database on it per test (no pytest here).

Where the server comes from, first that works:

1. ``KEDRO_RUNS_TEST_POSTGRES_URL`` (any database on a server the URL's user may create
   databases on);
2. a server already listening on 127.0.0.1:5432 with trust authentication, as user
   ``postgres`` or ``root``;
3. a throwaway server made with this machine's ``initdb`` and ``pg_ctl`` (on PATH, or in
   Debian's /usr/lib/postgresql/<version>/bin; on a Debian machine without them, run as
   root, Debian's ``postgresql`` package is installed first): trust auth on a free
   loopback port, no fsync, stopped at the end of the session.

``find_server`` returns None, with the reasons, only when none of them can be had.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import debian
import psycopg
from psycopg import sql
from sqlalchemy.engine import URL, make_url
from support import free_port

URL_VARIABLE = "KEDRO_RUNS_TEST_POSTGRES_URL"
LOCAL_PORT = 5432
LOCAL_USERS = ("postgres", "root")
# The cluster's own superuser when this module makes one.
THROWAWAY_USER = "postgres"


@dataclass
class PostgresServer:
    """A server the tests make and drop databases on. ``admin`` is a SQLAlchemy URL of a
    database to connect to for CREATE DATABASE (never one a test gets)."""

    admin: URL
    origin: str  # where it came from, for messages
    _throwaway: ThrowawayServer | None = field(default=None, repr=False)

    def database_url(self, name: str) -> str:
        """A ``postgresql+psycopg://`` URL of database ``name`` on this server."""
        return self.admin.set(drivername="postgresql+psycopg", database=name).render_as_string(
            hide_password=False
        )

    def create_database(self) -> str:
        """A new, empty database; returns its name."""
        name = f"kr_test_{uuid.uuid4().hex[:16]}"
        with self._admin_connection() as connection:
            connection.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        return name

    def drop_database(self, name: str) -> None:
        """Drop ``name``, closing what is still connected to it."""
        with self._admin_connection() as connection:
            connection.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )

    @contextlib.contextmanager
    def database(self) -> Iterator[str]:
        """A fresh database's URL for the block, dropped after it."""
        name = self.create_database()
        try:
            yield self.database_url(name)
        finally:
            self.drop_database(name)

    def stop(self) -> None:
        """Stop the server if this module started it; a server found running stays."""
        if self._throwaway is not None:
            self._throwaway.stop()

    def _admin_connection(self) -> psycopg.Connection[tuple[object, ...]]:
        return _connect(self.admin)


def _connect(url: URL, timeout: int = 5) -> psycopg.Connection[tuple[object, ...]]:
    return psycopg.connect(
        host=url.host,
        port=url.port,
        user=url.username,
        password=url.password,
        dbname=url.database,
        connect_timeout=timeout,
        autocommit=True,  # CREATE/DROP DATABASE cannot run in a transaction
    )


def _usable(url: URL) -> str | None:
    """None if ``url`` connects and may create databases; else why not."""
    try:
        with _connect(url, timeout=3) as connection:
            row = connection.execute(
                "SELECT rolcreatedb OR rolsuper FROM pg_roles WHERE rolname = current_user"
            ).fetchone()
    except psycopg.Error as error:
        return f"{url.render_as_string(hide_password=True)}: {str(error).strip()}"
    if row is None or not row[0]:
        return f"{url.render_as_string(hide_password=True)}: may not create databases"
    return None


def find_server() -> tuple[PostgresServer | None, list[str]]:
    """The first server that can be had (see the module docstring), and why each one
    before it could not."""
    reasons: list[str] = []
    given = os.environ.get(URL_VARIABLE)
    if given:
        url = make_url(given).set(drivername="postgresql+psycopg")
        refused = _usable(url)
        if refused is None:
            return PostgresServer(url, f"${URL_VARIABLE}"), reasons
        reasons.append(f"${URL_VARIABLE}: {refused}")
    for user in LOCAL_USERS:
        url = URL.create(
            "postgresql+psycopg",
            username=user,
            host="127.0.0.1",
            port=LOCAL_PORT,
            database="postgres",
        )
        refused = _usable(url)
        if refused is None:
            return PostgresServer(url, f"127.0.0.1:{LOCAL_PORT} as {user}"), reasons
        reasons.append(refused)
    try:
        throwaway = ThrowawayServer.start()
    except ThrowawayUnavailable as error:
        reasons.append(f"throwaway server: {error}")
        return None, reasons
    return PostgresServer(throwaway.admin, "a throwaway server", throwaway), reasons


def no_server_outcome(reasons: list[str], environ: dict[str, str]) -> tuple[str, bool]:
    """What the tests that need PostgreSQL do when ``find_server`` found none: the
    message, and whether they fail (under CI, where a skip would hide the missing
    server) rather than skip."""
    message = "no PostgreSQL server could be had: " + "; ".join(reasons)
    return message, environ.get("CI", "").lower() == "true"


def postgres_binaries() -> tuple[str, str] | None:
    """``initdb`` and ``pg_ctl``: on PATH, else the newest of Debian's versioned
    directories (its packages keep them off PATH)."""
    debian = sorted(
        Path("/usr/lib/postgresql").glob("*/bin"),
        key=lambda path: int(path.parent.name) if path.parent.name.isdigit() else 0,
        reverse=True,
    )
    for directory in [None, *map(str, debian)]:
        initdb, pg_ctl = (
            shutil.which("initdb", path=directory),
            shutil.which("pg_ctl", path=directory),
        )
        if initdb is not None and pg_ctl is not None:
            return initdb, pg_ctl
    return None


def install_postgresql() -> None:
    """Install Debian's PostgreSQL (a fresh machine has none). Raises ThrowawayUnavailable
    where that cannot be done."""
    try:
        debian.install("postgresql")
    except debian.NotInstallable as error:
        raise ThrowawayUnavailable(str(error)) from error


class ThrowawayUnavailable(Exception):
    """This machine cannot start a PostgreSQL server for the tests (no binaries, ...)."""


@dataclass
class ThrowawayServer:
    """A PostgreSQL cluster of its own in a temporary directory, on a free loopback port,
    with trust authentication and durability off (fsync, full-page writes, synchronous
    commit: a test database need not survive a power cut). Runs as ``postgres`` when
    this process is root (PostgreSQL refuses to run as root)."""

    directory: Path
    port: int
    run_as: str | None
    pg_ctl: str

    @property
    def data(self) -> Path:
        return self.directory / "data"

    @property
    def admin(self) -> URL:
        return URL.create(
            "postgresql+psycopg",
            username=THROWAWAY_USER,
            host="127.0.0.1",
            port=self.port,
            database="postgres",
        )

    @classmethod
    def start(cls) -> ThrowawayServer:
        """initdb, then ``pg_ctl start`` and wait until it accepts connections.
        Raises ThrowawayUnavailable with the reason if either fails.

        Its files go in a new directory under the system's temporary directory, not
        under pytest's: those are private to root, and the server runs as ``postgres``."""
        binaries = postgres_binaries()
        if binaries is None:
            install_postgresql()
            binaries = postgres_binaries()
        if binaries is None:
            raise ThrowawayUnavailable("initdb and pg_ctl are not on this machine")
        initdb, pg_ctl = binaries
        run_as = THROWAWAY_USER if os.geteuid() == 0 else None
        directory = Path(tempfile.mkdtemp(prefix="kr-postgres-"))
        if run_as is not None:
            try:
                account = pwd.getpwnam(run_as)
            except KeyError as error:
                shutil.rmtree(directory)
                raise ThrowawayUnavailable(f"running as root and no {run_as!r} user") from error
            os.chown(directory, account.pw_uid, account.pw_gid)
            directory.chmod(0o700)
        server = cls(directory, free_port(), run_as, pg_ctl)
        try:
            init = ["-D", str(server.data), "-A", "trust", "-U", THROWAWAY_USER, "--no-sync"]
            server._run([initdb, *init, "-E", "UTF8", "--locale", "C"])
            options = " ".join(
                [
                    "-c listen_addresses=127.0.0.1",
                    f"-p {server.port}",
                    f"-c unix_socket_directories={directory}",
                    "-c fsync=off -c full_page_writes=off -c synchronous_commit=off",
                    "-c max_connections=200",
                ]
            )
            log = server.directory / "server.log"
            server._run(
                [pg_ctl, "-D", str(server.data), "-l", str(log), "-o", options, "-w", "start"]
            )
        except ThrowawayUnavailable:
            server.stop()
            raise
        return server

    def _run(self, command: list[str]) -> None:
        prefix = ["runuser", "-u", self.run_as, "--"] if self.run_as else []
        try:
            done = subprocess.run(
                [*prefix, *command], capture_output=True, text=True, timeout=60, check=False
            )
        except (OSError, subprocess.TimeoutExpired) as error:
            raise ThrowawayUnavailable(f"{command[0]}: {error}") from error
        if done.returncode != 0:
            output = (done.stderr or done.stdout).strip().splitlines()[-3:]
            raise ThrowawayUnavailable(f"{Path(command[0]).name} failed: {' '.join(output)}")

    def stop(self) -> None:
        """Stop the server (fast shutdown) and remove its files."""
        if (self.data / "postmaster.pid").exists():
            with contextlib.suppress(ThrowawayUnavailable):
                self._run([self.pg_ctl, "-D", str(self.data), "-m", "fast", "-w", "stop"])
        shutil.rmtree(self.directory, ignore_errors=True)

"""``kedro-runs db upgrade`` and ``kedro-runs db current``: the run store's schema, as a
deploy step and as a question.

Every store upgrades itself when it opens, so ``upgrade`` is never required; it lets a
deployment migrate once, before the replicas start (each then finds nothing to do), and
see a failed migration as a failed step rather than as replicas that will not start.
On PostgreSQL it takes the same advisory lock as a starting store. A SQLite store has
one owner: while a service owns it, ``upgrade`` refuses (the service upgraded it).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from sqlalchemy.engine import make_url

from app.errors import StartupRefused
from app.persistence.engine import open_engine, sqlite_file
from app.persistence.migrations import schema_state, upgrade
from app.persistence.ownership import lock_sqlite_store
from app.settings import Settings


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser("db", help="the run store's schema (migrations)")
    actions = parser.add_subparsers(dest="db_command", required=True)
    for name, description in (
        ("upgrade", "bring the run store's schema to this release's (a deploy step)"),
        ("current", "say where the run store's schema is; exit 0 at this release's, 1 behind"),
    ):
        action = actions.add_parser(name, help=description)
        action.add_argument("--project", type=Path, help="Kedro project directory")
        action.add_argument("--state-dir", type=Path, help="state directory")
        action.add_argument(
            "--database", help="SQLAlchemy URL of the run store (default: KEDRO_RUNS_DATABASE)"
        )


def run(arguments: argparse.Namespace) -> int:
    """Carry out ``db upgrade`` or ``db current``; the exit status."""
    given = {
        name: getattr(arguments, name)
        for name in ("project", "state_dir", "database")
        if getattr(arguments, name) is not None
    }
    url = Settings(**given).store_url()
    shown = make_url(url).render_as_string(hide_password=True)
    database = sqlite_file(url)
    if arguments.db_command == "current" and database is not None and not database.is_file():
        print(f"kedro-runs: no run store at {database}", file=sys.stderr)
        return 2
    try:
        lock = lock_sqlite_store(url) if arguments.db_command == "upgrade" else None
    except StartupRefused as refusal:
        print(f"kedro-runs: {refusal}; the service upgraded it when it started", file=sys.stderr)
        return 2
    engine = open_engine(url, writer=True)
    try:
        before = schema_state(engine)
        if arguments.db_command == "current":
            print(f"{shown}: {before.describe()}")
            return 0 if before.up_to_date else 1
        if before.up_to_date:
            print(f"{shown}: already at revision {before.head} (head)")
            return 0
        upgrade(engine)
        print(f"{shown}: upgraded to revision {schema_state(engine).revision} (head)")
        return 0
    except StartupRefused as refusal:
        print(f"kedro-runs: {refusal}", file=sys.stderr)
        return 2
    finally:
        engine.dispose()
        if lock is not None:
            lock.close()

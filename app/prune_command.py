"""``kedro-runs prune``: prune the run store by hand, as the service does by itself.

Decision: the command needs the store to itself. A store has one owner (the service
dispatches and recovers runs from memory), so while a service owns it the command
refuses and says so: that service already prunes on its own every
``prune_interval_seconds``.
"""

from __future__ import annotations

import argparse
import re
import sys
from datetime import timedelta
from pathlib import Path

from app.domain.retention import RetentionPolicy, prune
from app.domain.runs import utcnow
from app.persistence.engine import sqlite_file
from app.persistence.ownership import StoreInUse
from app.persistence.store import SqlRunStore
from app.settings import Settings

_UNITS = {"d": 86400.0, "h": 3600.0, "m": 60.0, "s": 1.0}


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser(
        "prune",
        help="remove finished runs past their retention and expired idempotency keys "
        "(the service does this by itself; this is for a store no service owns)",
    )
    parser.add_argument("--project", type=Path, help="Kedro project directory")
    parser.add_argument("--state-dir", type=Path, help="state directory")
    parser.add_argument("--database", help="SQLAlchemy URL of the run store")
    parser.add_argument(
        "--older-than",
        type=older_than,
        help="prune runs finished longer ago than this: 30d, 12h, 90m, 3600s, or days "
        "(default: the retention_days setting)",
    )
    parser.add_argument(
        "--dry-run", action="store_true", help="count what would go; remove nothing"
    )


def older_than(text: str) -> timedelta:
    """``30d``, ``12h``, ``90m``, ``3600s`` or a number of days, more than zero."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([dhms]?)\s*", text)
    if match is None or float(match[1]) <= 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a duration such as 30d or 12h")
    return timedelta(seconds=float(match[1]) * _UNITS[match[2] or "d"])


def run(arguments: argparse.Namespace) -> int:
    """Prune (or count, with --dry-run) and print the counts. 2 if a service owns the
    store, there is no store where the settings say, or the settings are invalid."""
    given = {
        name: getattr(arguments, name)
        for name in ("project", "state_dir", "database")
        if getattr(arguments, name) is not None
    }
    settings = Settings(**given)
    days = settings.retention_days
    if arguments.older_than is not None:
        days = arguments.older_than / timedelta(days=1)
    policy = RetentionPolicy(days, settings.idempotency_ttl_seconds)
    database = sqlite_file(settings.store_url())
    if database is not None and not database.is_file():
        # Opening it would make an empty store: a mistyped path would "prune 0" quietly.
        print(
            f"kedro-runs: no run store at {database}; check --project, --state-dir or --database",
            file=sys.stderr,
        )
        return 2
    try:
        store = SqlRunStore(settings.store_url())
    except StoreInUse as error:
        print(
            f"kedro-runs: {error}.\nThe service that owns it prunes it by itself every "
            f"{settings.prune_interval_seconds:g}s (retention_days={settings.retention_days:g}).",
            file=sys.stderr,
        )
        return 2
    try:
        now = utcnow()
        if arguments.dry_run:
            counts = store.count_prunable(
                policy.runs_finished_before(now), policy.keys_created_before(now)
            )
        else:
            counts = prune(store, policy, now)
    finally:
        store.close()
    if days <= 0:
        print("finished runs are kept forever (retention_days=0)")
    print(counts.describe(dry_run=arguments.dry_run))
    return 0

"""``service_clock``: one row whose ``last_ms`` is the newest save version issued, as
milliseconds since the epoch. Every save version is taken from it in the transaction
that stores it, under the row's lock, so versions are unique and increase in commit
order across every process (Kedro finds "latest" by sorting them). Seeded from the
newest save version stored, first attempts and retries alike.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-03
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

# Kedro's timestamp format, as app.domain.save_versions had it when this was written.
_FORMAT = "%Y-%m-%dT%H.%M.%S.%f"
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _milliseconds(save_version: str) -> int:
    moment = datetime.strptime(save_version[:-1], _FORMAT).replace(tzinfo=UTC)
    return (moment - _EPOCH) // timedelta(milliseconds=1)


def upgrade() -> None:
    clock = op.create_table(
        "service_clock",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("last_ms", sa.BigInteger, nullable=False),
    )
    bind = op.get_bind()
    issued = [
        bind.scalar(sa.text(f"SELECT max({column}) FROM runs"))
        for column in ("save_version", "attempt_save_version")
    ]
    newest = max((str(version) for version in issued if version), default=None)
    op.bulk_insert(clock, [{"id": 1, "last_ms": _milliseconds(newest) if newest else 0}])


def downgrade() -> None:
    op.drop_table("service_clock")

"""``runs.last_event_seq``: the last event seq handed out for the run, allocated in the
database (``UPDATE ... RETURNING``) so writers in several processes number one run's
events without gaps or clashes, and in commit order (the run row's lock orders them).
Backfilled from the events already stored.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "runs", sa.Column("last_event_seq", sa.Integer, nullable=False, server_default="0")
    )
    op.execute(
        "UPDATE runs SET last_event_seq = (SELECT coalesce(max(run_events.seq), 0)"
        " FROM run_events WHERE run_events.run_id = runs.run_id)"
    )


def downgrade() -> None:
    op.drop_column("runs", "last_event_seq")

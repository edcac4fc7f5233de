"""``state_changes``: every change of a run's status, durable and numbered across the
whole service (the feed a dashboard follows), written in the transaction that makes the
change. Ids come from ``service_clock.last_change_id`` under the row's lock, not from a
sequence: a sequence hands out ids in the order transactions ask, not the order they
commit, so a reader at ``id > last`` could skip one that commits late.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "service_clock",
        sa.Column("last_change_id", sa.BigInteger, nullable=False, server_default="0"),
    )
    op.create_table(
        "state_changes",
        sa.Column("id", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("run_id", sa.String(36), sa.ForeignKey("runs.run_id"), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("at", sa.String(32), nullable=False),
        sa.Column("owner", sa.String(64), nullable=False),
    )
    op.create_index("ix_state_changes_owner_id", "state_changes", ["owner", "id"])
    op.create_index("ix_state_changes_run_id", "state_changes", ["run_id"])


def downgrade() -> None:
    op.drop_table("state_changes")
    with op.batch_alter_table("service_clock") as table:
        table.drop_column("last_change_id")

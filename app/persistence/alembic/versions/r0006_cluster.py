"""Cluster mode: ``runs.claimed_by`` (the replica whose lease a run's attempt runs under)
and ``instances`` (the replicas serving the database, with their heartbeats on the
database's clock). Empty and unused in embedded mode.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("runs") as table:
        table.add_column(sa.Column("claimed_by", sa.String(32)))
    op.create_table(
        "instances",
        sa.Column("instance_id", sa.String(32), primary_key=True),
        sa.Column("joined_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("heartbeat_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ready_workers", sa.Integer, nullable=False, server_default="0"),
        sa.Column("busy", sa.Integer, nullable=False, server_default="0"),
    )


def downgrade() -> None:
    op.drop_table("instances")
    with op.batch_alter_table("runs") as table:
        table.drop_column("claimed_by")

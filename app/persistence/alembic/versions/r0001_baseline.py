"""Baseline: the schema as the hand-rolled migrations left it at their last step (8).

A store those made is stamped at this revision, not migrated: it already is this schema
(``app.persistence.legacy`` first applies any of those steps it lacks). Timestamps are
ISO 8601 text (``tables.UtcTimestamp``), so they are VARCHAR(32) here.

Revision ID: 0001
Revises:
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

_TIMESTAMP = sa.String(32)


def upgrade() -> None:
    op.create_table(
        "runs",
        sa.Column("run_id", sa.String(36), primary_key=True),
        sa.Column("save_version", sa.String(32), nullable=False, unique=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("spec", sa.Text, nullable=False),
        sa.Column("nodes", sa.Text, nullable=False),
        sa.Column("footprint", sa.Text, nullable=False),
        sa.Column("env", sa.String(255)),
        sa.Column("kedro_version", sa.String(32), nullable=False),
        sa.Column("project_commit", sa.String(64)),
        sa.Column("queued_at", _TIMESTAMP, nullable=False),
        sa.Column("started_at", _TIMESTAMP),
        sa.Column("finished_at", _TIMESTAMP),
        sa.Column("cancel_requested_at", _TIMESTAMP),
        sa.Column("failure_reason", sa.String(32)),
        sa.Column("error_type", sa.String(255)),
        sa.Column("error_message", sa.Text),
        sa.Column("logs_dropped", sa.Integer, nullable=False, server_default="0"),
        sa.Column("outputs", sa.Text),
        sa.Column("owner", sa.String(64), nullable=False, server_default="anonymous"),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("attempt_save_version", sa.String(32)),
        sa.Column("acknowledged_attempts", sa.Integer, nullable=False, server_default="0"),
    )
    op.create_index("ix_runs_status_save_version", "runs", ["status", "save_version"])
    op.create_index("ix_runs_owner_save_version", "runs", ["owner", "save_version"])
    op.create_index("ix_runs_finished_at", "runs", ["finished_at"])
    op.create_table(
        "run_pipelines",
        sa.Column("run_id", sa.String(36), sa.ForeignKey("runs.run_id"), primary_key=True),
        sa.Column("pipeline_name", sa.String(255), primary_key=True),
    )
    op.create_index("ix_run_pipelines_name", "run_pipelines", ["pipeline_name", "run_id"])
    op.create_table(
        "run_events",
        sa.Column("run_id", sa.String(36), sa.ForeignKey("runs.run_id"), primary_key=True),
        sa.Column("seq", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("type", sa.String(32), nullable=False),
        sa.Column("at", _TIMESTAMP, nullable=False),
        sa.Column("node", sa.Text),
        sa.Column("data", sa.Text, nullable=False),
    )
    op.create_table(
        "run_logs",
        sa.Column("run_id", sa.String(36), sa.ForeignKey("runs.run_id"), primary_key=True),
        sa.Column("seq", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("at", _TIMESTAMP, nullable=False),
        sa.Column("level", sa.Integer, nullable=False),
        sa.Column("logger", sa.String(255), nullable=False),
        sa.Column("node", sa.Text),
        sa.Column("message", sa.Text, nullable=False),
    )
    op.create_table(
        "idempotency_keys",
        sa.Column("principal", sa.String(255), primary_key=True),
        sa.Column("key", sa.String(255), primary_key=True),
        sa.Column("body_hash", sa.String(64), nullable=False),
        sa.Column("run_id", sa.String(36), sa.ForeignKey("runs.run_id"), nullable=False),
        sa.Column("created_at", _TIMESTAMP, nullable=False),
    )
    op.create_index("ix_idempotency_keys_created_at", "idempotency_keys", ["created_at"])
    op.create_index("ix_idempotency_keys_run_id", "idempotency_keys", ["run_id"])
    op.create_table(
        "schema_version",
        sa.Column("version", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("applied_at", _TIMESTAMP, nullable=False),
    )


def downgrade() -> None:
    for table in (
        "schema_version",
        "idempotency_keys",
        "run_logs",
        "run_events",
        "run_pipelines",
        "runs",
    ):
        op.drop_table(table)

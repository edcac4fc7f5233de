"""Alembic's environment: run the revisions on the connection the caller handed over in
``config.attributes["connection"]``, inside the caller's transaction (so a migration is
all or nothing, and on PostgreSQL under the caller's advisory lock). There is no URL in
a file and no offline mode: ``app.persistence.migrations`` is the way in."""

from __future__ import annotations

from alembic import context

from app.persistence.tables import metadata

if context.is_offline_mode():
    raise RuntimeError("the run store's migrations run online only, on a connection")

context.configure(
    connection=context.config.attributes["connection"],
    target_metadata=metadata,
    # SQLite alters most things by copying the table: autogenerate then drafts that way.
    render_as_batch=True,
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()

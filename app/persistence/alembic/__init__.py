"""The run store's Alembic environment (``env.py``) and its revisions (``versions/``).

Nothing here is imported by the service: ``app.persistence.migrations`` points Alembic at
this directory. A new revision: write ``versions/rNNNN_<what>.py`` by hand (see the
others), or let Alembic draft one from ``tables.py`` with ``command.revision(config,
message, autogenerate=True)`` on a ``migrations.alembic_config(connection)``; then check
it runs on SQLite and PostgreSQL (tests/test_store_migrations.py).
"""

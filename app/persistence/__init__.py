"""The run store: SQLAlchemy 2 Core tables, engine set-up, migrations and the repository."""

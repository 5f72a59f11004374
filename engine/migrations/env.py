"""Alembic environment for kimflow.

Migrations run on the connection the store hands over (``Store.upgrade``), or on
``KIMFLOW_DATABASE_URL`` when Alembic's command line is used directly.
"""

from __future__ import annotations

import os

from alembic import context

from engine.store import DEFAULT_DATABASE_URL, create_db_engine, metadata

config = context.config


def run() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _migrate(connection)
        return
    engine = create_db_engine(os.environ.get("KIMFLOW_DATABASE_URL", DEFAULT_DATABASE_URL))
    with engine.begin() as conn:
        _migrate(conn)
    engine.dispose()


def _migrate(connection) -> None:  # type: ignore[no-untyped-def]
    context.configure(
        connection=connection,
        target_metadata=metadata,
        render_as_batch=connection.dialect.name == "sqlite",  # SQLite needs table copies for ALTERs
    )
    with context.begin_transaction():
        context.run_migrations()


run()

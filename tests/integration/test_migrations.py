"""The Alembic migrations are the only way the schema is made, so they must match the models exactly."""

from __future__ import annotations

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from engine import Engine
from engine.store import metadata


def test_migrations_create_exactly_the_declared_schema(engine: Engine) -> None:
    with engine.store.engine.connect() as conn:
        differences = compare_metadata(MigrationContext.configure(conn), metadata)
    assert differences == []


def test_schema_is_reported_current_after_upgrade(engine: Engine) -> None:
    engine.store.require_schema()
    assert engine.store.current_revision() == engine.store.head_revision()


def test_downgrade_to_nothing_and_upgrade_again(engine: Engine) -> None:
    from alembic import command
    from alembic.config import Config

    from engine.store import MIGRATIONS

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    with engine.store.engine.begin() as conn:
        config.attributes["connection"] = conn
        command.downgrade(config, "base")
    tables = set(sa.inspect(engine.store.engine).get_table_names()) - {"alembic_version"}
    assert tables == set()
    engine.upgrade_schema()
    assert {"kf_case", "kf_event", "kf_visit"} <= set(sa.inspect(engine.store.engine).get_table_names())

"""Alembic environment: migrations run on SQLite (batch mode) and Postgres."""

from __future__ import annotations

from alembic import context

from sopflow.models import metadata

config = context.config


def run_migrations() -> None:
    connection = config.attributes.get("connection")
    if connection is None:
        from sopflow.db import make_engine

        engine = make_engine(config.get_main_option("sqlalchemy.url"))
        with engine.connect() as connection:
            _run(connection)
        return
    _run(connection)


def _run(connection) -> None:  # type: ignore[no-untyped-def]
    context.configure(
        connection=connection,
        target_metadata=metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
        # Plugins' tables (their own branches, sopflow.plugin_schema) are not core's to drop.
        include_name=lambda name, type_, _parents: type_ != "table" or name in metadata.tables,
    )
    with context.begin_transaction():
        context.run_migrations()


run_migrations()

"""Alembic environment for one plugin's branch (``sopflow.plugin_schema``).

The revisions are the plugin's (its ``MigrationsSpec.directory``); the version
table is the plugin's own (``alembic_version_<plugin>``), so plugins never
share revision ids or history with core or with each other, and an uninstalled
plugin's leftover history does not stop ``sopflow migrate``.
"""

from __future__ import annotations

from alembic import context

config = context.config


def _include_name(metadata):  # type: ignore[no-untyped-def]
    """Autogenerate compares only the plugin's own tables (never core's)."""

    def include(name, type_, parent_names):  # type: ignore[no-untyped-def]
        return type_ != "table" or metadata is None or name in metadata.tables

    return include


def run_migrations() -> None:
    connection = config.attributes["connection"]
    metadata = config.attributes.get("target_metadata")
    context.configure(
        connection=connection,
        target_metadata=metadata,
        version_table=config.attributes["version_table"],
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
        include_name=_include_name(metadata),
    )
    with context.begin_transaction():
        context.run_migrations()


run_migrations()

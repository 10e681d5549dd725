"""A test plugin that owns a table (an outbox) and keeps a cursor in host state."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sopflow_sdk import MigrationsSpec, hookimpl

MIGRATIONS = Path(__file__).parent / "data" / "notes_plugin_migrations"

metadata = sa.MetaData()
outbox = sa.Table(
    "notes_outbox",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("tenant_id", sa.Integer, nullable=False),
    sa.Column("body", sa.String(200), nullable=False),
    sa.Column("sent", sa.Boolean, nullable=False, server_default=sa.false()),
)


class NotesPlugin:
    """Registers its migrations; the tests drive its ``Host`` directly."""

    @hookimpl
    def register_migrations(self, register: Any) -> None:
        register(MigrationsSpec(MIGRATIONS, metadata=metadata))


class Plain:
    """A second plugin with no tables, to show state does not leak between plugins."""

    @hookimpl
    def register_triggers(self, register: Any) -> None:
        pass

"""Plugins' own tables: each plugin's Alembic branch, found and run after core's.

A plugin declares its revisions with ``register_migrations`` (a
``MigrationsSpec``).  Each branch runs in the generic environment in
``migrations/plugins/`` against the plugin's own version table
``alembic_version_<plugin>`` (why not one shared table: see
docs/plugin-authoring.md).  ``sopflow migrate``, ``create_app(migrate=True)``
and the test kit call ``upgrade_plugins`` after ``sopflow.migrate.upgrade``.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import attrs
import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sopflow_sdk import PluginError

from sopflow.migrate import MIGRATIONS
from sopflow.plugins import PluginSystem

ENVIRONMENT = MIGRATIONS / "plugins"
#: the registration hook (``sopflow.plugins.REGISTRATION_HOOKS``)
HOOK = "register_migrations"


@attrs.frozen
class PluginBranch:
    """One plugin's migrations: where its revisions are and where its history is kept."""

    plugin: str
    directory: Path
    metadata: Any = None

    @property
    def version_table(self) -> str:
        """``alembic_version_<plugin>`` (non-identifier characters become ``_``)."""
        return "alembic_version_" + re.sub(r"\W", "_", self.plugin)


def plugin_branches(plugins: PluginSystem) -> list[PluginBranch]:
    """The branches of the loaded plugins that register migrations, by plugin name.

    Raises ``PluginError`` naming the plugin when its directory is missing or
    holds no revisions."""
    branches = []
    for item in sorted(plugins.registry.all(HOOK), key=lambda r: r.plugin):
        directory = Path(item.spec.directory)
        if not directory.is_dir() or not any(directory.glob("*.py")):
            raise PluginError(
                f"plugin '{item.plugin}' registered migrations in {directory}, which holds no "
                "Alembic revisions; point MigrationsSpec.directory at the folder of its revision files"
            )
        branches.append(PluginBranch(item.plugin, directory, item.spec.metadata))
    return branches


def branch_config(branch: PluginBranch, connection: sa.Connection | None = None) -> Config:
    """The Alembic config of ``branch`` (on ``connection``, when given)."""
    cfg = Config()
    cfg.set_main_option("script_location", str(ENVIRONMENT).replace("%", "%%"))
    cfg.set_main_option("version_locations", str(branch.directory).replace("%", "%%"))
    cfg.set_main_option("path_separator", "os")
    cfg.attributes["version_table"] = branch.version_table
    cfg.attributes["target_metadata"] = branch.metadata
    if connection is not None:
        cfg.attributes["connection"] = connection
    return cfg


_scripts: dict[Path, ScriptDirectory] = {}


def branch_heads(branch: PluginBranch) -> tuple[str, ...]:
    """The head revision(s) of ``branch`` (read once per process)."""
    script = _scripts.get(branch.directory)
    if script is None:
        script = _scripts[branch.directory] = ScriptDirectory.from_config(branch_config(branch))
    return tuple(sorted(script.get_heads()))


def current_revisions(engine: sa.Engine, branch: PluginBranch) -> tuple[str, ...]:
    """The revision(s) ``branch`` is at in the database; ``()`` before its first upgrade."""
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"version_table": branch.version_table})
        return tuple(sorted(context.get_current_heads()))


def upgrade_plugins(engine: sa.Engine, plugins: PluginSystem) -> dict[str, tuple[str, ...]]:
    """Upgrade every loaded plugin's branch to its head; run after core's upgrade.
    Idempotent (a branch already at head is not touched).  Returns plugin → revisions."""
    done = {}
    for branch in plugin_branches(plugins):
        if current_revisions(engine, branch) != branch_heads(branch):
            with engine.begin() as connection:
                command.upgrade(branch_config(branch, connection), "heads")
        done[branch.plugin] = current_revisions(engine, branch)
    return done


def downgrade_plugin(engine: sa.Engine, branch: PluginBranch, revision: str = "base") -> None:
    """Walk ``branch`` down to ``revision`` (``"base"`` drops the plugin's tables)."""
    with engine.begin() as connection:
        command.downgrade(branch_config(branch, connection), revision)

"""Plugins' own tables: each plugin's Alembic branch runs after core's, in its own
version table, from ``sopflow migrate``, ``create_app(migrate=True)`` and the test
kit; it is idempotent, steps down and up, and agrees with the plugin's metadata."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from plugin_state_support import NotesPlugin, metadata
from sopflow_sdk import MigrationsSpec, PluginError, hookimpl

BACKEND = os.environ.get("SOPFLOW_TEST_BACKEND", "sqlite")


def _system(*extra: tuple[str, Any]) -> Any:
    from sopflow.plugins import build_plugin_system

    return build_plugin_system(enabled=(), extra=[("notes", NotesPlugin()), *extra])


def _tables(engine: sa.Engine) -> set[str]:
    return set(sa.inspect(engine).get_table_names())


def _columns(engine: sa.Engine, table: str) -> set[str]:
    return {c["name"] for c in sa.inspect(engine).get_columns(table)}


def test_the_branch_runs_after_core_in_its_own_version_table(empty_url: str) -> None:
    from sopflow.db import make_engine
    from sopflow.migrate import upgrade
    from sopflow.plugin_schema import current_revisions, plugin_branches, upgrade_plugins

    engine = make_engine(empty_url)
    try:
        upgrade(engine)
        plugins = _system()
        assert upgrade_plugins(engine, plugins) == {"notes": ("0002",)}
        assert {"notes_outbox", "alembic_version_notes", "alembic_version", "plugin_state"} <= _tables(engine)
        assert "sent" in _columns(engine, "notes_outbox")
        [branch] = plugin_branches(plugins)
        assert branch.version_table == "alembic_version_notes"
        assert upgrade_plugins(engine, plugins) == {"notes": ("0002",)}  # idempotent
        upgrade(engine)  # core's chain does not see the plugin's history
        assert current_revisions(engine, branch) == ("0002",)
        with engine.connect() as conn:
            ctx = MigrationContext.configure(
                conn,
                opts={
                    "compare_type": True,
                    "include_name": lambda n, t, _p: t != "table" or n in metadata.tables,
                },
            )
            assert compare_metadata(ctx, metadata) == []  # the revisions and the tables agree
    finally:
        engine.dispose()


def test_the_branch_steps_down_and_up(empty_url: str) -> None:
    from sopflow.db import make_engine
    from sopflow.migrate import upgrade
    from sopflow.plugin_schema import current_revisions, downgrade_plugin, plugin_branches, upgrade_plugins

    engine = make_engine(empty_url)
    try:
        upgrade(engine)
        plugins = _system()
        upgrade_plugins(engine, plugins)
        core = _tables(engine) - {"notes_outbox", "alembic_version_notes"}
        [branch] = plugin_branches(plugins)
        downgrade_plugin(engine, branch, "0001")
        assert "sent" not in _columns(engine, "notes_outbox")
        downgrade_plugin(engine, branch, "base")
        assert current_revisions(engine, branch) == ()
        assert _tables(engine) - {"alembic_version_notes"} == core  # core's tables untouched
        assert upgrade_plugins(engine, plugins) == {"notes": ("0002",)}
        assert "sent" in _columns(engine, "notes_outbox")
    finally:
        engine.dispose()


def test_an_uninstalled_plugins_history_does_not_stop_migrate(empty_url: str) -> None:
    from sopflow.db import make_engine
    from sopflow.migrate import upgrade
    from sopflow.plugin_schema import upgrade_plugins
    from sopflow.plugins import build_plugin_system

    engine = make_engine(empty_url)
    try:
        upgrade(engine)
        upgrade_plugins(engine, _system())
        without = build_plugin_system(enabled=())
        upgrade(engine)
        assert upgrade_plugins(engine, without) == {}
        assert "notes_outbox" in _tables(engine)  # left alone, as Django leaves a removed app's tables
    finally:
        engine.dispose()


def test_a_missing_migrations_directory_names_the_plugin(tmp_path: Path) -> None:
    from sopflow.plugin_schema import plugin_branches

    class Broken:
        @hookimpl
        def register_migrations(self, register: Any) -> None:
            register(MigrationsSpec(tmp_path / "nowhere"))

    with pytest.raises(PluginError, match=r"plugin 'broken' registered migrations in .*nowhere"):
        plugin_branches(_system(("broken", Broken())))


def test_registering_migrations_twice_fails_at_startup() -> None:
    class Twice:
        @hookimpl
        def register_migrations(self, register: Any) -> None:
            register(MigrationsSpec("a"))
            register(MigrationsSpec("b"))

    with pytest.raises(PluginError, match="MigrationsSpec 'twice' is registered twice"):
        _system(("twice", Twice()))


def test_create_app_migrates_the_loaded_plugins(empty_url: str) -> None:
    from sopflow.app import create_app
    from sopflow.settings import Settings

    settings = Settings.from_env(
        {"SOPFLOW_DATABASE_URL": empty_url, "SOPFLOW_SECRET_KEY": "k" * 32, "SOPFLOW_PLUGINS": ""}
    )
    app = create_app(settings, extra_plugins=[("notes", NotesPlugin())], migrate=True)
    try:
        assert {"notes_outbox", "alembic_version_notes", "plugin_state"} <= _tables(app.engine)
    finally:
        app.dispose()


def test_sopflow_migrate_runs_the_installed_plugins_branches(tmp_path: Path, empty_url: str) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SOPFLOW_")}
    env.update(
        SOPFLOW_DATA_DIR=str(tmp_path),
        SOPFLOW_LOG_LEVEL="WARNING",
        SOPFLOW_DATABASE_URL=empty_url,
        SOPFLOW_SECRET_KEY="cli-test-secret-key-0123456789",
    )
    for _ in range(2):  # the second run is a no-op
        r = subprocess.run(
            [sys.executable, "-m", "sopflow.cli", "migrate"],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert r.returncode == 0, r.stderr
        assert "plugin wecom: at 0002 (alembic_version_wecom)" in r.stdout
        assert "database is up to date" in r.stdout
    engine = sa.create_engine(empty_url)
    try:
        assert {"wecom_live_codes", "wecom_corp_tags", "alembic_version_wecom"} <= _tables(engine)
    finally:
        engine.dispose()


def test_every_installed_plugins_branch_matches_its_tables(empty_url: str) -> None:
    """The first-party plugins' revisions and their ``MigrationsSpec.metadata`` agree."""
    from sopflow.db import make_engine
    from sopflow.migrate import upgrade
    from sopflow.plugin_schema import plugin_branches, upgrade_plugins
    from sopflow.plugins import build_plugin_system

    installed = build_plugin_system()
    branches = [b for b in plugin_branches(installed) if b.metadata is not None]
    assert "wecom" in {b.plugin for b in branches}
    engine = make_engine(empty_url)
    try:
        upgrade(engine)
        upgrade_plugins(engine, installed)
        with engine.connect() as conn:
            for branch in branches:
                tables = branch.metadata.tables
                own = lambda name, type_, _parents, t=tables: type_ != "table" or name in t  # noqa: E731
                ctx = MigrationContext.configure(conn, opts={"compare_type": True, "include_name": own})
                assert compare_metadata(ctx, branch.metadata) == [], f"plugin {branch.plugin}"
    finally:
        engine.dispose()

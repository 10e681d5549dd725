"""The application object: settings, database, clock, plugins, credentials.

Built by ``create_app`` once per process (API, worker, scheduler, CLI, tests);
nothing is created at import time, so two apps can live side by side in tests.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import sqlalchemy as sa

from sopflow.clock import Clock, make_clock
from sopflow.credentials import CredentialBox
from sopflow.db import make_engine, make_sessionmaker
from sopflow.engine.context import EngineContext
from sopflow.logging import configure_logging, get_logger
from sopflow.migrate import upgrade
from sopflow.plugin_schema import upgrade_plugins
from sopflow.plugins import PluginSystem, build_plugin_system
from sopflow.settings import Settings
from sopflow.worker.runtime import install_inline


class SopflowApp(EngineContext):
    """The engine's context plus what the process owns: the database engine and,
    once workers are installed, the broker."""

    def __init__(self, settings: Settings, clock: Clock, plugins: PluginSystem, engine: sa.Engine) -> None:
        super().__init__(
            settings, clock, plugins, make_sessionmaker(engine), CredentialBox(settings.secret_key)
        )
        self.engine = engine
        self.log = get_logger("sopflow")
        self.broker: Any = None
        install_inline(self)

    def dispose(self) -> None:
        """Close the database connections."""
        self.engine.dispose()


def create_app(
    settings: Settings | None = None,
    *,
    clock: Clock | None = None,
    extra_plugins: Iterable[tuple[str, Any]] = (),
    migrate: bool = True,
    embedded: bool = False,
) -> SopflowApp:
    settings = settings or Settings.from_env(embedded=embedded)
    configure_logging(settings.log_level, settings.log_format)
    plugins = build_plugin_system(
        settings.plugins, settings.disabled_plugins, settings.trace_plugins, extra_plugins
    )
    engine = make_engine(settings.database_url)
    if migrate:
        upgrade(engine)
        upgrade_plugins(engine, plugins)
    return SopflowApp(settings, clock or make_clock(settings.clock), plugins, engine)

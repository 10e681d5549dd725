"""The application object: settings, database, clock, plugins, credentials.

Built by ``create_app`` once per process (API, worker, scheduler, CLI, tests);
nothing is created at import time, so two apps can live side by side in tests.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from sopflow.clock import Clock, make_clock
from sopflow.credentials import CredentialBox
from sopflow.db import make_engine, make_sessionmaker
from sopflow.logging import configure_logging, get_logger
from sopflow.models import TenantPlugin
from sopflow.plugins import PluginSystem, build_plugin_system
from sopflow.settings import Settings


class SopflowApp:
    def __init__(self, settings: Settings, clock: Clock, plugins: PluginSystem, engine: sa.Engine) -> None:
        self.settings = settings
        self.clock = clock
        self.plugins = plugins
        self.engine = engine
        self.sessions = make_sessionmaker(engine)
        self.credentials = CredentialBox(settings.secret_key)
        self.log = get_logger("sopflow")
        self.broker: Any = None

    @contextmanager
    def tx(self) -> Iterator[Session]:
        """One transaction: committed on success, rolled back on any error."""
        with self.sessions() as session, session.begin():
            yield session

    def now(self):  # type: ignore[no-untyped-def]
        return self.clock.now()

    def disabled_plugins(self, session: Session, tenant_id: int) -> set[str]:
        return set(
            session.scalars(
                sa.select(TenantPlugin.plugin).where(
                    TenantPlugin.tenant_id == tenant_id, TenantPlugin.enabled.is_(False)
                )
            )
        )

    def plugin_enabled(self, session: Session, tenant_id: int, plugin: str) -> bool:
        """Installed-and-loaded plugins are on for every tenant unless switched off."""
        return plugin in self.plugins.infos and plugin not in self.disabled_plugins(session, tenant_id)

    def notify_event(self, tenant_id: int, event: dict[str, Any], off: set[str] | None = None) -> None:
        """Tell plugins about ``event`` and run the evaluate step.  ``off`` (the
        tenant's disabled plugins) saves a lookup when announcing a batch."""
        if off is None:
            with self.tx() as session:
                off = self.disabled_plugins(session, tenant_id)
        from sopflow.host import PluginHost

        self.plugins.notify(
            "on_event",
            enabled=lambda name: name not in off,
            host_for=lambda name: PluginHost(self, name),
            tenant_id=tenant_id,
            event=event,
        )
        if event.get("type") == "stage.changed" and event.get("customer_id") is not None:
            payload = event.get("payload") or {}
            self.plugins.notify(
                "on_stage_changed",
                enabled=lambda name: name not in off,
                tenant_id=tenant_id,
                customer_id=event["customer_id"],
                pipeline_id=payload.get("pipeline_id"),
                from_stage=payload.get("from_stage"),
                to_stage=payload.get("to_stage"),
                cause=payload.get("cause", ""),
            )
        from sopflow.engine.runner import process_event

        process_event(self, tenant_id, event)

    def dispose(self) -> None:
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
        from sopflow.migrate import upgrade
        from sopflow.plugin_schema import upgrade_plugins

        upgrade(engine)
        upgrade_plugins(engine, plugins)
    return SopflowApp(settings, clock or make_clock(settings.clock), plugins, engine)

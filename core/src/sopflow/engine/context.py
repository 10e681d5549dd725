"""The engine's context: what engine functions need from the process they run
in, as one typed object handed to them (never found through globals).

The runtime builds one per process (``sopflow.app.SopflowApp`` is one) and
decides what ``enqueue`` does: run the job inline (the embedded mode, the CLI,
the tests) or send it to the broker's workers.  The engine only ever says
*what* should happen next; it never knows how."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any, Protocol

import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from sopflow.clock import Clock
from sopflow.config_cache import cached
from sopflow.credentials import CredentialBox
from sopflow.db import read_only
from sopflow.failure_log import FailureLog
from sopflow.models import TenantPlugin
from sopflow.plugins import PluginSystem
from sopflow.settings import Settings


class Enqueue(Protocol):
    """Run job ``name`` with ``args`` later (a worker) or now (inline)."""

    def __call__(self, name: str, *args: Any) -> None: ...


class RateLimiter:
    """Per-channel-account token bucket from ``Capabilities.rate_per_minute``
    (in-process: each worker process gets its own share).  Time comes from the
    injected clock, so the manual clock drives it in tests and the demo."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._buckets: dict[int, tuple[float, float]] = {}

    def wait_time(self, account_id: int, per_minute: int | None, now: float) -> float:
        """Seconds to wait before the next call on ``account_id`` (0: go now, and
        the call's token is taken)."""
        if not per_minute:
            return 0.0
        with self._lock:
            tokens, stamp = self._buckets.get(account_id, (float(per_minute), now))
            now = max(now, stamp)  # a clock that steps back must not mint tokens
            tokens = min(float(per_minute), tokens + (now - stamp) * per_minute / 60)
            if tokens >= 1:
                self._buckets[account_id] = (tokens - 1, now)
                return 0.0
            self._buckets[account_id] = (tokens, now)
            return (1 - tokens) * 60 / per_minute


class Announce(Protocol):
    """Tell plugins' observers and the evaluate step about stored events."""

    def __call__(self, tenant_id: int, events: list[dict[str, Any]]) -> None: ...


def _no_runtime(*args: Any) -> None:
    raise RuntimeError("no runtime is installed on this context; build it with sopflow.app.create_app")


class EngineContext:
    """Session factory, clock, settings, plugins and credentials, plus the
    per-process state delivery keeps: live channels (per account and secret),
    the channels' daily caps, and the rate limiter."""

    def __init__(
        self,
        settings: Settings,
        clock: Clock,
        plugins: PluginSystem,
        sessions: sessionmaker[Session],
        credentials: CredentialBox,
        enqueue: Enqueue = _no_runtime,
        announce: Announce = _no_runtime,
    ) -> None:
        self.settings = settings
        self.clock = clock
        self.plugins = plugins
        self.sessions = sessions
        self.credentials = credentials
        self.enqueue: Enqueue = enqueue
        self.announce: Announce = announce
        self.limiter = RateLimiter()
        #: live Channel objects by (account id, secrets ciphertext), or (tenant, "log" / "manual")
        self.channels: dict[tuple[int, Any], Any] = {}
        #: each channel's declared per-customer daily cap, built on first use
        self.channel_caps: dict[str, int] | None = None
        #: each channel's declared weekly or monthly per-customer cap, likewise
        self.period_caps: dict[str, dict[str, int]] | None = None
        #: failures logged once per class per interval (outages must not flood the log)
        self.failures = FailureLog(settings.failure_log_interval)

    @contextmanager
    def tx(self) -> Iterator[Session]:
        """One transaction: committed on success, rolled back on any error."""
        with self.sessions() as session, session.begin():
            yield session

    @contextmanager
    def read(self) -> Iterator[Session]:
        """One read-only transaction (``sopflow.db.read_only``): for reads that
        write nothing — API GETs, the API-key lookup."""
        with read_only(self.sessions) as session:
            yield session

    def now(self) -> datetime:
        """The injected clock's time (UTC)."""
        return self.clock.now()

    def enqueue_after_commit(self, name: str, *args: Any) -> bool:
        """Enqueue work whose durable record is already committed (an event waiting
        for evaluation, a nurture audience pending): if the hand-off or the inline
        run fails, the scheduler's sweep does the work later, so the failure is
        logged once per interval and never raised into an acknowledged request."""
        try:
            self.enqueue(name, *args)
        except Exception as exc:
            self.failures.report(f"{name}_after_commit_failed", exc)
            return False
        return True

    def disabled_plugins(self, session: Session, tenant_id: int) -> frozenset[str]:
        """The plugins the tenant switched off."""

        def load() -> frozenset[str]:
            query = sa.select(TenantPlugin.plugin).where(
                TenantPlugin.tenant_id == tenant_id, TenantPlugin.enabled.is_(False)
            )
            return frozenset(session.scalars(query))

        return cached(session, tenant_id, "disabled_plugins", load)

    def plugin_enabled(self, session: Session, tenant_id: int, plugin: str) -> bool:
        """Installed-and-loaded plugins are on for every tenant unless switched off."""
        return plugin in self.plugins.infos and plugin not in self.disabled_plugins(session, tenant_id)

    def switch_plugin(self, session: Session, tenant_id: int, plugin: str, enabled: bool) -> None:
        """Switch ``plugin`` on or off for the tenant (flushed: the next read sees it)."""
        row = session.get(TenantPlugin, (tenant_id, plugin))
        if row is None:
            session.add(TenantPlugin(tenant_id=tenant_id, plugin=plugin, enabled=enabled))
        else:
            row.enabled = enabled
        session.flush()

"""Settings from ``SOPFLOW_*`` environment variables, read once per app.

Every variable is documented in docs/configuration.md; a meta-test checks that
each field here appears there.  All problems are reported together.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Mapping
from pathlib import Path

import attrs
from sopflow_sdk import ConfigError, Secret


def _split(value: str | None) -> tuple[str, ...]:
    return tuple(p.strip() for p in (value or "").split(",") if p.strip())


def default_data_dir() -> Path:
    return Path(os.environ.get("XDG_DATA_HOME", Path.home() / ".local" / "share")) / "sopflow"


@attrs.frozen
class Settings:
    database_url: str
    redis_url: str | None = None
    secret_key: Secret = attrs.field(factory=lambda: Secret(""), repr=False)
    timezone: str = "Asia/Shanghai"
    clock: str = "system"
    plugins: tuple[str, ...] | None = None
    disabled_plugins: tuple[str, ...] = ()
    trace_plugins: bool = False
    log_level: str = "INFO"
    log_format: str = "json"
    host: str = "127.0.0.1"
    port: int = 8000
    max_body_bytes: int = 1_048_576
    max_batch_events: int = 500
    ingest_group_events: int = 500
    loop_guard_depth: int = 5
    scheduler_interval: float = 1.0
    claim_lease_seconds: int = 300
    max_in_flight: int = 2000
    deliver_batch: int = 50
    worker_threads: int = 4
    max_journey_stages: int = 10
    max_active_journeys: int = 3
    evaluate_grace_seconds: int = 30
    retry_after_seconds: int = 5
    failure_log_interval: float = 30.0
    console_session_minutes: int = 480

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, *, embedded: bool = False) -> Settings:
        """Read settings.  ``embedded`` fills in the single-process defaults
        (a SQLite file and a generated secret key in the data directory)."""
        env = os.environ if env is None else env
        problems: list[tuple[str, str]] = []
        data_dir = Path(env.get("SOPFLOW_DATA_DIR") or default_data_dir())

        database_url = env.get("SOPFLOW_DATABASE_URL", "")
        if not database_url:
            if embedded:
                data_dir.mkdir(parents=True, exist_ok=True)
                database_url = f"sqlite:///{data_dir / 'sopflow.db'}"
            else:
                problems.append(
                    (
                        "SOPFLOW_DATABASE_URL",
                        "not set; use postgresql+psycopg://user:pass@host/db or sqlite:///path/sopflow.db",
                    )
                )
        elif not database_url.startswith(("sqlite", "postgresql")):
            problems.append(("SOPFLOW_DATABASE_URL", "must start with sqlite:// or postgresql+psycopg://"))
        elif database_url.startswith("postgresql://"):
            database_url = "postgresql+psycopg://" + database_url.removeprefix("postgresql://")

        key = env.get("SOPFLOW_SECRET_KEY", "")
        if not key and embedded:
            key = _embedded_secret_key(data_dir)
        if not key:
            problems.append(
                (
                    "SOPFLOW_SECRET_KEY",
                    "not set; it encrypts channel credentials at rest. Generate one with "
                    "`python -c 'import secrets; print(secrets.token_urlsafe(32))'`",
                )
            )
        elif len(key) < 16:
            problems.append(("SOPFLOW_SECRET_KEY", "too short; use at least 16 characters"))

        clock = env.get("SOPFLOW_CLOCK", "system")
        if clock not in ("system", "manual"):
            problems.append(("SOPFLOW_CLOCK", f"{clock!r} is not 'system' or 'manual'"))

        tz = env.get("SOPFLOW_TIMEZONE", "Asia/Shanghai")
        try:
            from zoneinfo import ZoneInfo

            ZoneInfo(tz)
        except Exception:
            problems.append(("SOPFLOW_TIMEZONE", f"{tz!r} is not an IANA time zone name"))

        ints: dict[str, int] = {}
        for name, default in (
            ("SOPFLOW_PORT", 8000),
            ("SOPFLOW_MAX_BODY_BYTES", 1_048_576),
            ("SOPFLOW_MAX_BATCH_EVENTS", 500),
            ("SOPFLOW_INGEST_GROUP_EVENTS", 500),
            ("SOPFLOW_LOOP_GUARD_DEPTH", 5),
            ("SOPFLOW_WORKER_THREADS", 4),
            ("SOPFLOW_CLAIM_LEASE_SECONDS", 300),
            ("SOPFLOW_MAX_IN_FLIGHT", 2000),
            ("SOPFLOW_DELIVER_BATCH", 50),
            ("SOPFLOW_MAX_JOURNEY_STAGES", 10),
            ("SOPFLOW_MAX_ACTIVE_JOURNEYS", 3),
            ("SOPFLOW_EVALUATE_GRACE_SECONDS", 30),
            ("SOPFLOW_RETRY_AFTER_SECONDS", 5),
            ("SOPFLOW_CONSOLE_SESSION_MINUTES", 480),
        ):
            raw = env.get(name)
            try:
                ints[name] = int(raw) if raw else default
                if ints[name] <= 0:
                    raise ValueError
            except ValueError:
                problems.append((name, f"{raw!r} is not a positive integer"))
        try:
            interval = float(env.get("SOPFLOW_SCHEDULER_INTERVAL") or 1.0)
        except ValueError:
            problems.append(("SOPFLOW_SCHEDULER_INTERVAL", "must be a number of seconds"))
            interval = 1.0

        try:
            failure_log_interval = float(env.get("SOPFLOW_FAILURE_LOG_INTERVAL") or 30.0)
            if failure_log_interval < 0:
                raise ValueError
        except ValueError:
            problems.append(("SOPFLOW_FAILURE_LOG_INTERVAL", "must be a number of seconds, 0 or more"))
            failure_log_interval = 30.0

        log_format = env.get("SOPFLOW_LOG_FORMAT", "json")
        if log_format not in ("json", "console"):
            problems.append(("SOPFLOW_LOG_FORMAT", "use 'json' or 'console'"))

        if problems:
            raise ConfigError(problems, subject="settings")
        enabled = env.get("SOPFLOW_PLUGINS")
        return cls(
            database_url=database_url,
            redis_url=env.get("SOPFLOW_REDIS_URL") or None,
            secret_key=Secret(key),
            timezone=tz,
            clock=clock,
            plugins=_split(enabled) if enabled is not None else None,
            disabled_plugins=_split(env.get("SOPFLOW_DISABLED_PLUGINS")),
            trace_plugins=env.get("SOPFLOW_TRACE_PLUGINS", "") not in ("", "0", "false"),
            log_level=env.get("SOPFLOW_LOG_LEVEL", "INFO").upper(),
            log_format=log_format,
            host=env.get("SOPFLOW_HOST", "127.0.0.1"),
            port=ints["SOPFLOW_PORT"],
            max_body_bytes=ints["SOPFLOW_MAX_BODY_BYTES"],
            max_batch_events=ints["SOPFLOW_MAX_BATCH_EVENTS"],
            ingest_group_events=ints["SOPFLOW_INGEST_GROUP_EVENTS"],
            loop_guard_depth=ints["SOPFLOW_LOOP_GUARD_DEPTH"],
            scheduler_interval=interval,
            worker_threads=ints["SOPFLOW_WORKER_THREADS"],
            claim_lease_seconds=ints["SOPFLOW_CLAIM_LEASE_SECONDS"],
            max_in_flight=ints["SOPFLOW_MAX_IN_FLIGHT"],
            deliver_batch=ints["SOPFLOW_DELIVER_BATCH"],
            max_journey_stages=ints["SOPFLOW_MAX_JOURNEY_STAGES"],
            max_active_journeys=ints["SOPFLOW_MAX_ACTIVE_JOURNEYS"],
            evaluate_grace_seconds=ints["SOPFLOW_EVALUATE_GRACE_SECONDS"],
            retry_after_seconds=ints["SOPFLOW_RETRY_AFTER_SECONDS"],
            failure_log_interval=failure_log_interval,
            console_session_minutes=ints["SOPFLOW_CONSOLE_SESSION_MINUTES"],
        )


def _embedded_secret_key(data_dir: Path) -> str:
    """The embedded mode keeps a generated key beside its database (mode 0600),
    so credentials stored by ``sopflow up`` can be read after a restart."""
    data_dir.mkdir(parents=True, exist_ok=True)
    path = data_dir / "secret.key"
    if not path.exists():
        path.write_text(secrets.token_urlsafe(32))
        path.chmod(0o600)
    return path.read_text().strip()

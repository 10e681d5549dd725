"""Building blocks behind the fixtures, usable without pytest too."""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import sqlalchemy as sa

DEFAULT_PG = "postgresql+psycopg://sopflow@127.0.0.1:55432/postgres"
TEST_SECRET_KEY = "test-secret-key-0123456789abcdef"


class TestDatabase:
    """One migrated database per test session; each test gets a clean copy
    (SQLite: a copied file; Postgres: the tables truncated)."""

    __test__ = False

    def __init__(self, workdir: Path) -> None:
        self.backend = os.environ.get("SOPFLOW_TEST_BACKEND", "sqlite")
        self.workdir = workdir
        self._template: Path | None = None
        self._pg_url: str | None = None
        self._admin_url: str | None = None

    def _migrate(self, url: str) -> None:
        """Core's migrations, then the branch of every installed plugin that has one
        (whatever ``SOPFLOW_PLUGINS`` says: a test may load any of them)."""
        from sopflow.db import make_engine
        from sopflow.migrate import upgrade
        from sopflow.plugin_schema import upgrade_plugins
        from sopflow.plugins import build_plugin_system

        engine = make_engine(url)
        upgrade(engine)
        upgrade_plugins(engine, build_plugin_system())
        engine.dispose()

    def url_for_test(self, name: str) -> str:
        if self.backend == "postgres":
            return self._postgres()
        if self._template is None:
            self._template = self.workdir / "template.db"
            self._migrate(f"sqlite:///{self._template}")
        path = self.workdir / f"{uuid.uuid4().hex[:8]}-{name[:40]}.db".replace("/", "_")
        shutil.copy(self._template, path)
        return f"sqlite:///{path}"

    def _postgres(self) -> str:
        if self._pg_url is None:
            admin = os.environ.get("SOPFLOW_TEST_POSTGRES_URL", DEFAULT_PG)
            name = f"sopflow_test_{os.getpid()}_{uuid.uuid4().hex[:6]}"
            engine = sa.create_engine(admin, isolation_level="AUTOCOMMIT")
            with engine.connect() as conn:
                conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
            engine.dispose()
            self._admin_url, self._db_name = admin, name
            self._pg_url = admin.rsplit("/", 1)[0] + "/" + name
            self._migrate(self._pg_url)
        else:
            self.truncate()
        return self._pg_url

    def truncate(self) -> None:
        """Empty every table, core's and plugins', keeping the migration history."""
        engine = sa.create_engine(self._pg_url)  # type: ignore[arg-type]
        names = [n for n in sa.inspect(engine).get_table_names() if not n.startswith("alembic_version")]
        tables = ", ".join(f'"{name}"' for name in names)
        with engine.begin() as conn:
            conn.exec_driver_sql(f"TRUNCATE {tables} RESTART IDENTITY CASCADE")
        engine.dispose()

    def close(self) -> None:
        if self._admin_url:
            engine = sa.create_engine(self._admin_url, isolation_level="AUTOCOMMIT")
            with engine.connect() as conn:
                conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{self._db_name}" WITH (FORCE)')
            engine.dispose()


def make_test_app(
    database_url: str,
    *,
    clock: Any = None,
    extra_plugins: Iterable[tuple[str, Any]] = (),
    env: dict[str, str] | None = None,
) -> Any:
    """An app on ``database_url`` with the manual clock and test settings."""
    from sopflow.app import create_app
    from sopflow.clock import ManualClock
    from sopflow.plugin_schema import upgrade_plugins
    from sopflow.settings import Settings

    # No installed plugin is loaded unless asked for (SOPFLOW_PLUGINS in ``env``):
    # a test sees the built-ins plus the plugins it names, whatever else is installed.
    values = {
        "SOPFLOW_DATABASE_URL": database_url,
        "SOPFLOW_SECRET_KEY": TEST_SECRET_KEY,
        "SOPFLOW_CLOCK": "manual",
        "SOPFLOW_LOG_LEVEL": "WARNING",
        "SOPFLOW_PLUGINS": "",
    }
    values.update(env or {})
    settings = Settings.from_env(values)
    app = create_app(settings, clock=clock or ManualClock(), extra_plugins=extra_plugins, migrate=False)
    # The template database has the installed plugins' tables; a plugin loaded only
    # for this test (``extra_plugins``) gets its branch here (a no-op when at head).
    upgrade_plugins(app.engine, app.plugins)
    return app


class ApiClient:
    """A Litestar test client that sends the bearer key and decodes JSON."""

    __test__ = False

    def __init__(self, client: Any, key: str | None, tenant_id: int | None = None) -> None:
        self.client = client
        self.key = key
        self.tenant_id = tenant_id

    def _headers(self, headers: dict[str, str] | None) -> dict[str, str]:
        out = {"authorization": f"Bearer {self.key}"} if self.key else {}
        out.update(headers or {})
        return out

    def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        headers: dict[str, str] | None = None,
        **kwargs: Any,
    ) -> Any:
        return self.client.request(method, path, json=json, headers=self._headers(headers), **kwargs)

    def get(self, path: str, **kw: Any) -> Any:
        return self.request("GET", path, **kw)

    def post(self, path: str, json: Any = None, **kw: Any) -> Any:
        return self.request("POST", path, json=json, **kw)

    def patch(self, path: str, json: Any = None, **kw: Any) -> Any:
        return self.request("PATCH", path, json=json, **kw)

    def put(self, path: str, json: Any = None, **kw: Any) -> Any:
        return self.request("PUT", path, json=json, **kw)

    def delete(self, path: str, **kw: Any) -> Any:
        return self.request("DELETE", path, **kw)

    def as_key(self, key: str | None) -> ApiClient:
        return ApiClient(self.client, key, self.tenant_id)


def new_tenant(app: Any, name: str, scopes: Iterable[str] = ("admin",)) -> tuple[int, str]:
    from sopflow.engine.customers.tenants import create_tenant, issue_api_key

    with app.tx() as s:
        tenant = create_tenant(s, name, app.now())
        _, token = issue_api_key(s, tenant.id, list(scopes), app.now())
        return tenant.id, token


class LiveServer:
    """Serve an ASGI app over real HTTP on 127.0.0.1 (an ephemeral port) in a
    background thread, for fakes that call back into sopflow."""

    def __init__(self, asgi_app: Any) -> None:
        import threading

        import uvicorn

        config = uvicorn.Config(asgi_app, host="127.0.0.1", port=0, log_level="warning", lifespan="on")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> LiveServer:
        import time

        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("the test server did not start")
            time.sleep(0.01)
        return self

    @property
    def base_url(self) -> str:
        port = self.server.servers[0].sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}"

    def __exit__(self, *exc: Any) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)

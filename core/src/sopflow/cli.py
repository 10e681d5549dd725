"""The ``sopflow`` command: up, serve, worker, scheduler, migrate, tenants, journeys, plugins;
installed plugins add their own (``sopflow demo`` comes from the ``sopflow-demo`` distribution)."""

from __future__ import annotations

import contextlib
import json
import signal
import sys
import threading
from typing import Any

import click
from sopflow_sdk import ConfigError, PluginError

from sopflow.plugin_new import plugin_group


def _app(embedded: bool = False, migrate: bool = False) -> Any:
    import sqlalchemy.exc

    from sopflow.app import create_app

    try:
        return create_app(embedded=embedded, migrate=migrate)
    except (ConfigError, PluginError) as exc:
        raise click.ClickException(str(exc)) from None
    except (sqlalchemy.exc.OperationalError, sqlalchemy.exc.ArgumentError) as exc:
        # The URL may hold a password: name the variable and the driver's reason only.
        reason = str(getattr(exc, "orig", None) or exc).splitlines()[0]
        raise click.ClickException(
            f"SOPFLOW_DATABASE_URL: cannot open the database ({reason}). "
            "Check the URL, that the server is running and that the directory exists."
        ) from None


@click.group()
@click.version_option(package_name="sopflow")
def main() -> None:
    """sopflow: customer follow-up SOPs over WeCom, WeChat and other channels."""


main.add_command(plugin_group)


@main.command()
@click.option("--host", default=None, help="Bind address (default SOPFLOW_HOST or 127.0.0.1).")
@click.option("--port", type=int, default=None, help="Port (default SOPFLOW_PORT or 8000).")
def up(host: str | None, port: int | None) -> None:
    """API + worker + scheduler in one process, on embedded defaults (SQLite file,
    in-memory broker).  Nothing else to install."""
    from sopflow.worker.actors import install
    from sopflow.worker.broker import make_broker, start_worker
    from sopflow.worker.scheduler import Scheduler
    from sopflow.worker.services import start_services

    app = _app(embedded=True, migrate=True)
    host, port = host or app.settings.host, port or app.settings.port
    sock = _bind(host, port)  # before any worker or scheduler touches the database
    broker = make_broker(app.settings)
    install(app, broker)
    worker = start_worker(broker, app.settings.worker_threads)
    services = start_services(app)
    scheduler = Scheduler(app)
    scheduler.start_thread()
    click.echo(
        f"sopflow up: database {app.engine.url.render_as_string(hide_password=True)}, "
        f"broker {'redis' if app.settings.redis_url else 'in-memory'}"
    )
    _ensure_first_tenant(app)
    try:
        _serve(app, host, port, sock)
    finally:
        scheduler.stop()
        services.stop()
        worker.stop()
        click.echo("sopflow up: scheduler and worker stopped")


def _ensure_first_tenant(app: Any) -> None:
    """On a fresh embedded database, create a tenant and print its admin key once,
    so `sopflow up` is usable without a second command."""
    import sqlalchemy as sa

    from sopflow.engine.customers.tenants import create_tenant, issue_api_key
    from sopflow.models import Tenant

    with app.tx() as s:
        if s.scalar(sa.select(sa.func.count()).select_from(Tenant)):
            click.echo(
                "existing tenants kept; a new admin key: `sopflow tenants create NAME` (a new tenant) "
                "or POST /api/v1/api-keys with an admin key of the tenant"
            )
            return
        tenant = create_tenant(s, "default", app.now(), app.settings.timezone)
        _, token = issue_api_key(s, tenant.id, ["admin"], app.now(), name="initial admin key")
    click.echo(f"created tenant 'default'; admin API key (shown once): {token}")


def _bind(host: str, port: int) -> Any:
    """A listening socket on ``host:port``, or a clear error when it is taken.
    Binding first, and handing the socket to uvicorn, leaves no window in which
    another process can take the port after the check."""
    import socket

    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise click.ClickException(
            f"cannot listen on {host}:{port} ({exc.strerror}); another process has the port? "
            "Pick another with --port (or SOPFLOW_PORT)"
        ) from None
    sock.listen(2048)
    return sock


def _serve(app: Any, host: str, port: int, sock: Any = None) -> None:
    import uvicorn

    # uvicorn stops gracefully on SIGTERM, then re-raises the signal to the handler
    # that was installed before it; exiting through SystemExit there lets the
    # caller's `finally` stop the scheduler and worker (and the exit code is 0).
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))

    from sopflow.api.app import build_api

    sock = sock or _bind(host, port)
    click.echo(f"API on http://{host}:{port}  (docs: http://{host}:{port}/schema)")
    uvicorn.Server(uvicorn.Config(build_api(app), log_level="warning")).run(sockets=[sock])


@main.command()
@click.option("--host", default=None)
@click.option("--port", type=int, default=None)
@click.option("--workers", type=int, default=1, help="API processes.")
def serve(host: str | None, port: int | None, workers: int) -> None:
    """The API only (production: Postgres + Redis; run workers and schedulers apart)."""
    import uvicorn

    from sopflow.worker.actors import enqueue_only

    app = enqueue_only(_app())
    host, port = host or app.settings.host, port or app.settings.port
    if workers > 1:
        app.dispose()
        uvicorn.run(
            "sopflow.api.asgi:api", host=host, port=port, workers=workers, factory=True, log_level="warning"
        )
    else:
        _serve(app, host, port)


@main.command()
@click.option("--threads", type=int, default=None, help="Worker threads (default SOPFLOW_WORKER_THREADS).")
def worker(threads: int | None) -> None:
    """Dramatiq workers (needs SOPFLOW_REDIS_URL)."""
    from sopflow.worker.actors import install
    from sopflow.worker.broker import make_broker, start_worker
    from sopflow.worker.services import start_services

    app = _app()
    if not app.settings.redis_url:
        raise click.ClickException(
            "SOPFLOW_REDIS_URL is not set: a separate worker needs Redis. "
            "For one process on embedded defaults use `sopflow up`"
        )
    broker = make_broker(app.settings)
    install(app, broker)
    w = start_worker(broker, threads or app.settings.worker_threads)
    services = start_services(app)  # plugins' long-lived tasks (event-stream listeners)
    click.echo("worker started")
    _wait_for_signal()
    services.stop()
    w.stop()


@main.command()
def scheduler() -> None:
    """The scheduler loop (safe to run more than one)."""
    from sopflow.worker.actors import install
    from sopflow.worker.broker import make_broker
    from sopflow.worker.scheduler import Scheduler

    app = _app()
    if app.settings.redis_url:
        install(app, make_broker(app.settings))
    sched = Scheduler(app)
    sched.start_thread()
    _wait_for_signal()
    sched.stop()


def _wait_for_signal() -> None:
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    stop.wait()


@main.command()
@click.option("--embedded", is_flag=True, help="Use the embedded SQLite file when no URL is set.")
def migrate(embedded: bool) -> None:
    """Apply database migrations."""
    from sopflow.plugin_schema import current_revisions, plugin_branches

    app = _app(embedded=embedded, migrate=True)
    for branch in plugin_branches(app.plugins):
        revisions = ", ".join(current_revisions(app.engine, branch)) or "none"
        click.echo(f"plugin {branch.plugin}: at {revisions} ({branch.version_table})")
    click.echo("database is up to date")


@main.group()
def tenants() -> None:
    """Manage tenants."""


@tenants.command("create")
@click.argument("name")
@click.option("--timezone", default=None, help="IANA zone (default SOPFLOW_TIMEZONE).")
@click.option("--embedded", is_flag=True, help="Use the embedded SQLite file when no URL is set.")
def tenants_create(name: str, timezone: str | None, embedded: bool) -> None:
    """Create a tenant and print its admin API key (shown once)."""
    from sopflow.engine.customers.tenants import create_tenant, issue_api_key
    from sopflow.errors import DomainError

    app = _app(embedded=embedded or _embedded_default(), migrate=True)
    try:
        with app.tx() as s:
            tenant = create_tenant(s, name, app.now(), timezone or app.settings.timezone)
            _, token = issue_api_key(s, tenant.id, ["admin"], app.now(), name="initial admin key")
    except DomainError as exc:
        raise click.ClickException(exc.detail) from None
    click.echo(f"tenant {tenant.name!r} (id {tenant.id}) created")
    click.echo(f"admin API key (shown once, store it now): {token}")


@main.group()
def journeys() -> None:
    """Operate journeys (create and edit them through the API)."""


@journeys.command("sync")
@click.argument("journey_id", type=int)
@click.option("--batch", type=int, default=5000, show_default=True, help="Customers per transaction.")
@click.option("--embedded", is_flag=True, help="Use the embedded SQLite file when no URL is set.")
def journeys_sync(journey_id: int, batch: int, embedded: bool) -> None:
    """Place every existing customer that matches a stage rule, with a progress bar.

    Continues a sync already requested through the API (or left by a stopped
    process); otherwise requests one. The journey is locked against edits meanwhile."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from sopflow.engine.journeys.sync import request_sync, run_sync
    from sopflow.errors import DomainError
    from sopflow.models import Journey

    app = _app(embedded=embedded or _embedded_default(), migrate=True)
    try:
        with app.tx() as s:
            journey = s.get(Journey, journey_id, with_for_update=True)
            if journey is None:
                raise click.ClickException(f"no journey {journey_id}; list them with GET /api/v1/journeys")
            tenant_id = journey.tenant_id
            state = dict(journey.sync or {})
            if state.get("state") not in ("pending", "running"):
                state = dict(request_sync(s, journey, app.now()))
    except DomainError as exc:
        raise click.ClickException(exc.detail) from None
    columns = (TextColumn("placing customers"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, transient=False) as bar:
        task = bar.add_task("sync", total=state.get("total") or None, completed=state.get("done", 0))

        def show(p: dict[str, Any]) -> None:
            bar.update(task, completed=p.get("done", 0), total=p.get("total") or None)

        done = run_sync(app, tenant_id, journey_id, batch=batch, progress=show)
    click.echo(
        f"checked {done.get('done', 0)} customers, moved {done.get('placed', 0)}, "
        f"enrolled {done.get('enrolled', 0)} into stage SOPs and reminders"
    )


def _embedded_default() -> bool:
    import os

    return not os.environ.get("SOPFLOW_DATABASE_URL")


@main.command("plugins")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def plugins_cmd(as_json: bool) -> None:
    """List installed plugins and the hooks each implements."""
    from sopflow.app import create_app
    from sopflow.settings import Settings

    try:
        settings = Settings.from_env(embedded=True)
        app = create_app(settings, migrate=False)
    except (ConfigError, PluginError) as exc:
        raise click.ClickException(str(exc)) from None
    rows = [
        {
            "name": i.name,
            "distribution": i.distribution,
            "version": i.version,
            "default": i.default,
            "hooks": i.hooks,
        }
        for i in app.plugins.infos.values()
    ]
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table("name", "distribution", "version", "hooks")
    for r in rows:
        table.add_row(r["name"], r["distribution"] or "(built-in)", r["version"] or "", ", ".join(r["hooks"]))
    Console(file=sys.stdout).print(table)


def _plugin_commands() -> None:
    """Let installed plugins add subcommands (hook ``register_commands``)."""
    import os

    from sopflow.logging import get_logger
    from sopflow.plugins import build_plugin_system

    log = get_logger("sopflow.cli")
    raw = os.environ.get("SOPFLOW_PLUGINS")
    enabled = tuple(p.strip() for p in raw.split(",") if p.strip()) if raw is not None else None
    disabled = tuple(
        p.strip() for p in os.environ.get("SOPFLOW_DISABLED_PLUGINS", "").split(",") if p.strip()
    )
    try:
        system = build_plugin_system(enabled, disabled)
    except PluginError:
        return  # the command that runs reports the plugin problem with its fix
    for impl in system.pm.hook.register_commands.get_hookimpls():
        # As with pluggy's own calls, an implementation takes any subset of the arguments.
        args = {"cli": main, "open_host": _host_opener(impl.plugin_name)}
        try:
            impl.function(**{name: args[name] for name in impl.argnames})
        except Exception as exc:  # one broken plugin must not take the CLI down
            log.warning(
                "plugin_commands_failed", plugin=impl.plugin_name, error=f"{type(exc).__name__}: {exc}"
            )


def _host_opener(plugin: str) -> Any:
    @contextlib.contextmanager
    def open_host(embedded: bool = False) -> Any:
        from sopflow.host import PluginHost

        app = _app(embedded=embedded or _embedded_default(), migrate=True)
        try:
            yield PluginHost(app, plugin)
        finally:
            app.dispose()

    return open_host


_plugin_commands()

if __name__ == "__main__":  # pragma: no cover
    main()

"""Shared helpers for the benchmark scenarios: a throw-away database that can be
snapshotted after loading and restored before every timed run, the app and an
API client on it, bulk Core inserts, bounded timing, and the machine line.

Ideas from ``bench/rules_count.py``: rows are generated in chunks and written
with one Core ``INSERT`` per table per chunk (executemany), never through the ORM.
"""

from __future__ import annotations

import contextlib
import os
import platform
import shutil
import signal
import sqlite3
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import make_url

#: The manual clock starts here in every scenario (a Monday, 09:30 in Shanghai).
START = datetime(2026, 3, 2, 1, 30, tzinfo=UTC)
CHUNK = 20_000
DEFAULT_PG = "postgresql+psycopg://sopflow@127.0.0.1:55432/postgres"


class BenchTimeout(RuntimeError):
    """A scenario ran past its wall-time budget."""


@contextlib.contextmanager
def time_limit(seconds: float, what: str) -> Iterator[None]:
    """Raise :class:`BenchTimeout` in the main thread after ``seconds`` of wall time."""

    def expired(signum: int, frame: Any) -> None:
        raise BenchTimeout(f"{what} ran longer than {seconds:.0f} s")

    previous = signal.signal(signal.SIGALRM, expired)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


class Deadline:
    """A time bound for a loop that also has a count bound: ``check()`` each round."""

    def __init__(self, seconds: float, what: str) -> None:
        self.end = time.monotonic() + seconds
        self.what = what
        self.seconds = seconds

    def check(self) -> None:
        if time.monotonic() > self.end:
            raise BenchTimeout(f"{self.what} ran longer than {self.seconds:.0f} s")


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    started = time.perf_counter()
    result = fn()
    return time.perf_counter() - started, result


def median(values: Sequence[float]) -> float:
    return statistics.median(values)


def chunks(rows: Sequence[Any], size: int = CHUNK) -> Iterator[Sequence[Any]]:
    for i in range(0, len(rows), size):
        yield rows[i : i + size]


def bulk_insert(conn: Any, table: sa.Table, rows: Sequence[dict[str, Any]]) -> None:
    """One Core executemany per chunk of rows."""
    for part in chunks(rows):
        if part:
            conn.execute(sa.insert(table), list(part))


# --------------------------------------------------------------------------- databases


@dataclass
class Database:
    """A fresh, migrated database.  ``snapshot()`` freezes it after loading;
    ``restore()`` gives a new database URL with exactly that content, so every
    timed run starts from the same state (SQLite: a file copy; Postgres:
    ``CREATE DATABASE … TEMPLATE``)."""

    backend: str
    postgres_url: str = DEFAULT_PG
    workdir: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="sopflow-bench-")))
    url: str = ""
    _template: str | None = None
    _copies: list[str] = field(default_factory=list)
    _pg_names: list[str] = field(default_factory=list)

    def create(self, name: str) -> str:
        from sopflow.db import make_engine
        from sopflow.migrate import upgrade

        if self.backend == "sqlite":
            self.url = f"sqlite:///{self.workdir / f'{name}.db'}"
        else:
            db = f"sopflow_bench_{name}_{uuid.uuid4().hex[:8]}".lower()
            self._admin(f"CREATE DATABASE \"{db}\" ENCODING 'UTF8' TEMPLATE template0")
            self._pg_names.append(db)
            self.url = make_url(self.postgres_url).set(database=db).render_as_string(hide_password=False)
        engine = make_engine(self.url)
        upgrade(engine)
        engine.dispose()
        return self.url

    def _admin(self, sql: str) -> None:
        admin = sa.create_engine(self.postgres_url, isolation_level="AUTOCOMMIT")
        try:
            with admin.connect() as c:
                c.exec_driver_sql(sql)
        finally:
            admin.dispose()

    def snapshot(self) -> None:
        """Call after every engine on ``url`` is disposed."""
        if self.backend == "sqlite":
            path = make_url(self.url).database
            con = sqlite3.connect(path)
            con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            con.close()
            self._template = path
        else:
            self._template = make_url(self.url).database

    def restore(self) -> str:
        """A new database with the snapshot's content; the previous copies are dropped."""
        assert self._template is not None, "snapshot() first"
        self.drop_copies()
        if self.backend == "sqlite":
            path = self.workdir / f"run-{uuid.uuid4().hex[:8]}.db"
            shutil.copyfile(self._template, path)
            self._copies.append(str(path))
            return f"sqlite:///{path}"
        db = f"{self._template[:40]}_r{uuid.uuid4().hex[:6]}"
        self._admin(f'CREATE DATABASE "{db}" TEMPLATE "{self._template}"')
        self._copies.append(db)
        return make_url(self.postgres_url).set(database=db).render_as_string(hide_password=False)

    def drop_copies(self) -> None:
        for copy in self._copies:
            if self.backend == "sqlite":
                for suffix in ("", "-wal", "-shm"):
                    Path(copy + suffix).unlink(missing_ok=True)
            else:
                self._admin(f'DROP DATABASE IF EXISTS "{copy}" WITH (FORCE)')
        self._copies.clear()

    def close(self) -> None:
        self.drop_copies()
        if self.backend == "postgres":
            for db in self._pg_names:
                self._admin(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')
        shutil.rmtree(self.workdir, ignore_errors=True)


def open_app(url: str, start: datetime = START) -> Any:
    """The sopflow app on ``url`` with a manual clock at ``start`` (no plugins but the built-ins)."""
    from sopflow.clock import ManualClock
    from sopflow_sdk.testing.harness import make_test_app

    return make_test_app(url, clock=ManualClock(start))


@contextlib.contextmanager
def api_client(app: Any, tenant: str = "bench") -> Iterator[Any]:
    """An admin API client for a fresh tenant, through the real HTTP API (Litestar TestClient)."""
    from litestar.testing import TestClient
    from sopflow.api.app import build_api
    from sopflow_sdk.testing.harness import ApiClient, new_tenant

    tenant_id, key = new_tenant(app, tenant)
    with TestClient(build_api(app), raise_server_exceptions=True) as client:
        yield ApiClient(client, key, tenant_id)


def ok(response: Any, status: int = 200) -> Any:
    if response.status_code != status:
        raise RuntimeError(f"API answered {response.status_code}: {response.text[:500]}")
    return response.json()


def analyze(app: Any) -> None:
    with app.engine.begin() as conn:
        conn.exec_driver_sql("ANALYZE")


def insert_customers(
    app: Any,
    tenant_id: int,
    people: Iterable[dict[str, Any]],
    *,
    pipeline_id: int | None = None,
    now: datetime = START,
) -> int:
    """Bulk-insert customers described as dicts (``fields``, ``tags``, ``timezone``,
    ``source``, ``churned``, ``stage_id``); ids are assigned here, in order.
    A ``stage_id`` also writes the open stage-history row. Returns the first id."""
    from sopflow.models import Customer, CustomerStage, CustomerTag, StageHistory

    with app.engine.connect() as conn:
        first = (conn.scalar(sa.select(sa.func.max(Customer.__table__.c.id))) or 0) + 1
    next_id = first
    batch: list[dict[str, Any]] = []

    def flush() -> None:
        nonlocal batch
        if not batch:
            return
        customers, tags, stages, history = [], [], [], []
        for p in batch:
            cid = p["id"]
            customers.append(
                {
                    "id": cid,
                    "tenant_id": tenant_id,
                    "display_name": p.get("display_name", ""),
                    "fields": p.get("fields", {}),
                    "timezone": p.get("timezone"),
                    "source": p.get("source"),
                    "churned_at": now if p.get("churned") else None,
                    "created_at": now,
                    "updated_at": now,
                }
            )
            tags += [{"customer_id": cid, "tag": t, "tenant_id": tenant_id} for t in p.get("tags", ())]
            if p.get("stage_id") is not None:
                stages.append(
                    {
                        "customer_id": cid,
                        "pipeline_id": pipeline_id,
                        "tenant_id": tenant_id,
                        "stage_id": p["stage_id"],
                        "entered_at": now,
                    }
                )
                history.append(
                    {
                        "tenant_id": tenant_id,
                        "customer_id": cid,
                        "pipeline_id": pipeline_id,
                        "stage_id": p["stage_id"],
                        "entered_at": now,
                        "cause": "manual",
                    }
                )
        with app.engine.begin() as conn:
            for table, rows in (
                (Customer.__table__, customers),
                (CustomerTag.__table__, tags),
                (CustomerStage.__table__, stages),
                (StageHistory.__table__, history),
            ):
                bulk_insert(conn, table, rows)
        batch = []

    for person in people:
        batch.append({**person, "id": next_id})
        next_id += 1
        if len(batch) >= CHUNK:
            flush()
    flush()
    return first


# --------------------------------------------------------------------------- reporting


def _read(path: str) -> str:
    try:
        return Path(path).read_text()
    except OSError:
        return ""


def machine(backend: str, postgres_url: str | None = None) -> dict[str, Any]:
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in _read("/proc/cpuinfo").splitlines()
            if line.startswith("model name")
        ),
        platform.processor() or "unknown CPU",
    )
    mem_kib = next(
        (int(line.split()[1]) for line in _read("/proc/meminfo").splitlines() if line.startswith("MemTotal")),
        0,
    )
    info: dict[str, Any] = {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "ram_gib": round(mem_kib / 1024 / 1024, 1),
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
        "sqlalchemy": sa.__version__,
        "os": f"{platform.system()} {platform.release()}",
    }
    try:
        import ahocorasick

        info["pyahocorasick"] = getattr(ahocorasick, "__version__", "installed")
    except ImportError:  # pragma: no cover
        pass
    if backend == "postgres" and postgres_url:
        engine = sa.create_engine(postgres_url)
        try:
            with engine.connect() as c:
                info["postgres"] = c.exec_driver_sql("SHOW server_version").scalar_one()
        finally:
            engine.dispose()
    return info


def machine_line(info: dict[str, Any]) -> str:
    parts = [
        f"{info['cpu']}, {info['cores']} cores, {info['ram_gib']} GiB RAM",
        f"Python {info['python']}",
        f"SQLite {info['sqlite']}",
    ]
    if "postgres" in info:
        parts.append(f"PostgreSQL {info['postgres']}")
    parts.append(f"SQLAlchemy {info['sqlalchemy']}")
    return "; ".join(parts)


def rate(count: float, seconds: float) -> float:
    return count / seconds if seconds > 0 else float("inf")


def figure(
    seconds: float, count: float, unit: str, runs: Sequence[float] = (), **extra: Any
) -> dict[str, Any]:
    """One measured figure: wall seconds (median when ``runs``), the count it moved, its rate."""
    out: dict[str, Any] = {
        "seconds": round(seconds, 4),
        "count": count,
        "unit": unit,
        "rate": round(rate(count, seconds), 1),
    }
    if runs:
        out["runs"] = [round(r, 4) for r in runs]
    out.update(extra)
    return out


@dataclass
class Context:
    """What a scenario gets from ``bench/run.py``."""

    backend: str
    postgres_url: str
    quick: bool
    runs: int
    args: Any
    budget_seconds: float
    verbose: bool = True

    def log(self, message: str) -> None:
        if self.verbose:
            print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)

    def database(self, name: str) -> Database:
        db = Database(self.backend, self.postgres_url)
        db.create(name)
        return db

    def deadline(self, what: str, share: float = 1.0) -> Deadline:
        return Deadline(self.budget_seconds * share, what)

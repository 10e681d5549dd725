"""Engine and session set-up for SQLite (embedded) and Postgres (production)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import msgspec
import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from sopflow import config_cache


def _json_dumps(value: Any) -> str:
    return msgspec.json.encode(value).decode()


def make_engine(url: str, **kwargs: Any) -> sa.Engine:
    # JSON columns (touch outcomes, event payloads, definitions) are written and read
    # on every hot path: msgspec does it several times faster than the json module,
    # and writes NaN as null where json writes invalid JSON that Postgres refuses
    kwargs.setdefault("json_serializer", _json_dumps)
    kwargs.setdefault("json_deserializer", msgspec.json.decode)
    if url.startswith("sqlite"):
        engine = sa.create_engine(url, connect_args={"check_same_thread": False, "timeout": 30}, **kwargs)

        @sa.event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
            # WAL lets the API read while the scheduler writes; NORMAL sync is
            # durable across process crashes (only an OS crash can lose the tail).
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.close()
            # pysqlite's own implicit BEGIN must be off so ours below is used.
            dbapi_conn.isolation_level = None

        @sa.event.listens_for(engine, "begin")
        def _sqlite_begin(conn: Any) -> None:
            # BEGIN IMMEDIATE takes the write lock up front, so two writers
            # queue instead of failing with "database is locked" mid-transaction.
            # A read-only transaction (``read_only``) takes no lock: in WAL mode
            # it reads its snapshot while a writer commits.
            conn.exec_driver_sql(
                "BEGIN" if conn.get_execution_options().get(READ_ONLY) else "BEGIN IMMEDIATE"
            )

        @sa.event.listens_for(engine, "handle_error")
        def _sqlite_reopen_after_disk_error(ctx: Any) -> None:
            # A connection opened while the file was read-only stays read-only (SQLite
            # falls back silently), and one that hit a full disk or an I/O error may
            # hold a broken journal: treat these as a lost connection, so the pool
            # drops every connection and the next transaction opens fresh ones.  The
            # process then recovers by itself once the disk is writable again.
            if sqlite_disk_error(ctx.original_exception):
                ctx.is_disconnect = True
                ctx.engine.pool.dispose()  # the idle ones too: they were opened the same way

        return engine
    kwargs.setdefault("pool_size", 10)
    kwargs.setdefault("max_overflow", 20)
    kwargs.setdefault("pool_pre_ping", True)
    engine = sa.create_engine(url, **kwargs)

    @sa.event.listens_for(engine, "begin")
    def _read_only_begin(conn: Any) -> None:
        # Postgres refuses a write in a read-only transaction: a handler that
        # claims to read and writes fails in the Postgres pass, not in production.
        if conn.get_execution_options().get(READ_ONLY):
            conn.exec_driver_sql("SET TRANSACTION READ ONLY")

    return engine


#: the connection execution option that makes a transaction read-only (``read_only``)
READ_ONLY = "sopflow_read_only"


_DISK_ERRORS = ("readonly database", "database or disk is full", "disk i/o error", "unable to open database")


def sqlite_disk_error(exc: BaseException | None) -> bool:
    """Whether ``exc`` is SQLite saying it cannot write its file."""
    return exc is not None and any(words in str(exc).lower() for words in _DISK_ERRORS)


def make_sessionmaker(engine: sa.Engine) -> sessionmaker[Session]:
    """Sessions that keep loaded values after commit and share one per-process
    configuration cache (``sopflow.config_cache``)."""
    factory = sessionmaker(engine, expire_on_commit=False)
    config_cache.install(factory)
    return factory


@contextmanager
def read_only(factory: sessionmaker[Session]) -> Iterator[Session]:
    """A session in one read-only transaction: on SQLite it takes no write lock
    (readers never queue behind the scheduler's writes); on Postgres a write in
    it is an error."""
    with factory() as session, session.begin():
        session.connection(execution_options={READ_ONLY: True})
        yield session


@contextmanager
def transaction(factory: sessionmaker[Session]) -> Iterator[Session]:
    """A session in one transaction: committed on success, rolled back on error."""
    with factory() as session, session.begin():
        yield session


def reachable(engine: sa.Engine) -> bool:
    """Whether the database answers a trivial query (``/health``)."""
    try:
        with engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
    except Exception:
        return False
    return True

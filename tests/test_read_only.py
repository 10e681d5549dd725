"""Read-only transactions (API GETs, the API-key lookup): on SQLite they take no
write lock, so a reader never queues behind a writer; on Postgres a write in one
is refused, so a handler that claims to read and writes fails in the tests."""

from __future__ import annotations

import threading
from typing import Any

import pytest
import sqlalchemy as sa

from tests.sop_support import add_customer


def backend(app: Any) -> str:
    return app.engine.dialect.name


def test_a_reader_does_not_wait_for_a_writer_on_sqlite(api: Any, sopflow_app: Any) -> None:
    if backend(sopflow_app) != "sqlite":
        pytest.skip("SQLite's write lock; Postgres readers never wait for writers")
    from sopflow.models import Customer

    add_customer(api, "wm-1")
    holding, release = threading.Event(), threading.Event()

    def writer() -> None:
        with sopflow_app.tx() as s:  # BEGIN IMMEDIATE: the write lock, held
            s.execute(sa.update(Customer).values(display_name="being renamed"))
            holding.set()
            release.wait(60)

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        assert holding.wait(30)
        with sopflow_app.read() as s:  # would wait out the 30 s busy timeout, then fail
            names = list(s.scalars(sa.select(Customer.display_name)))
        assert "being renamed" not in names  # its own snapshot, not the uncommitted write
        listed = api.get("/api/v1/customers")  # the key lookup and the GET: reads too
        assert listed.status_code == 200 and listed.json()["items"]
    finally:
        release.set()
        thread.join(30)


def test_a_write_in_a_read_only_transaction_is_refused_on_postgres(api: Any, sopflow_app: Any) -> None:
    if backend(sopflow_app) != "postgresql":
        pytest.skip("Postgres enforces READ ONLY; on SQLite the lock test above covers reads")
    from sopflow.models import Customer

    add_customer(api, "wm-1")
    with pytest.raises(sa.exc.InternalError, match="read-only transaction"), sopflow_app.read() as s:
        s.execute(sa.update(Customer).values(display_name="x"))
    with sopflow_app.read() as s:
        assert "x" not in list(s.scalars(sa.select(Customer.display_name)))

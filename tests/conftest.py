"""Shared helpers for the cross-package tests."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa


def row_counts(app: Any) -> dict[str, int]:
    """Rows per table: tests compare before/after to prove nothing was written."""
    from sopflow.models import metadata

    with app.engine.connect() as conn:
        return {
            t.name: conn.execute(sa.select(sa.func.count()).select_from(t)).scalar_one()
            for t in metadata.sorted_tables
        }


@pytest.fixture(autouse=True)
def illegal_touch_moves(
    monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest
) -> Iterator[list[str]]:
    """Every flow a test runs on an app makes only the touch moves the table
    allows: an ``IllegalTouchMove`` raised anywhere (even one a worker loop logs
    and survives) fails the test.  A test that provokes one on purpose asks for
    this fixture and clears the list."""
    from sopflow.models.touch_status import IllegalTouchMove

    raised: list[str] = []
    original = IllegalTouchMove.__init__

    def spy(self: IllegalTouchMove, *args: Any, **kwargs: Any) -> None:
        original(self, *args, **kwargs)
        raised.append(str(self))

    monkeypatch.setattr(IllegalTouchMove, "__init__", spy)
    yield raised
    if "sopflow_app" not in request.fixturenames:  # no flow ran: the table's own tests
        return
    assert not raised, f"illegal touch moves in {request.node.name}: {raised}"


@pytest.fixture
def empty_url(tmp_path: Path) -> Iterator[str]:
    """The URL of a brand-new, empty database (not the suite's migrated template):
    a new SQLite file, or a new Postgres database in the Postgres pass."""
    if os.environ.get("SOPFLOW_TEST_BACKEND", "sqlite") != "postgres":
        yield f"sqlite:///{tmp_path / 'empty.db'}"
        return
    from sopflow_sdk.testing.harness import DEFAULT_PG

    admin = os.environ.get("SOPFLOW_TEST_POSTGRES_URL", DEFAULT_PG)
    name = f"sopflow_empty_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    engine = sa.create_engine(admin, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    try:
        yield admin.rsplit("/", 1)[0] + "/" + name
    finally:
        with engine.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        engine.dispose()


@pytest.fixture
def broker(sopflow_app: Any) -> Any:
    """An in-memory broker bound to the app, no worker: tests run its messages by hand."""
    from sopflow.worker.actors import install, uninstall
    from sopflow.worker.broker import make_broker

    broker = make_broker(sopflow_app.settings)
    install(sopflow_app, broker)
    yield broker
    broker.close()
    uninstall(sopflow_app)

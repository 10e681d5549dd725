"""Shared helpers for the cross-package tests."""

from __future__ import annotations

from collections.abc import Iterator
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

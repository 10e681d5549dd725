"""Shared helpers for the cross-package tests."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa


def row_counts(app: Any) -> dict[str, int]:
    """Rows per table: tests compare before/after to prove nothing was written."""
    from sopflow.models import metadata

    with app.engine.connect() as conn:
        return {
            t.name: conn.execute(sa.select(sa.func.count()).select_from(t)).scalar_one()
            for t in metadata.sorted_tables
        }

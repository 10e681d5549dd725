"""Keyset (cursor) pagination by id: stable under inserts, O(page) per page."""

from __future__ import annotations

import base64
from typing import Any

import sqlalchemy as sa

from sopflow.errors import InvalidInput

MAX_LIMIT = 500
#: The largest id the API takes: ids are 32-bit integer columns on Postgres (a
#: larger value would overflow the driver), and ids count up from 1.  It is exact
#: in every JSON client and in a JSON Schema bound (a float).
MAX_ID = 2**31 - 1


def decode_cursor(cursor: str | None) -> int:
    if not cursor:
        return 0
    try:
        value = int(base64.urlsafe_b64decode(cursor.encode() + b"==").decode())
        if not 0 <= value <= MAX_ID:
            raise ValueError
        return value
    except Exception:
        raise InvalidInput([("cursor", "not a cursor from a previous page; omit it to start over")]) from None


def encode_cursor(last_id: int) -> str:
    return base64.urlsafe_b64encode(str(last_id).encode()).decode().rstrip("=")


def check_limit(limit: int) -> int:
    if limit < 1 or limit > MAX_LIMIT:
        raise InvalidInput([("limit", f"use 1 to {MAX_LIMIT}")])
    return limit


def page(
    session: Any, query: sa.Select, id_column: Any, cursor: str | None, limit: int
) -> tuple[list[Any], str | None]:
    check_limit(limit)
    after = decode_cursor(cursor)
    rows = list(session.scalars(query.where(id_column > after).order_by(id_column).limit(limit + 1)))
    next_cursor = encode_cursor(rows[limit - 1].id) if len(rows) > limit else None
    return rows[:limit], next_cursor

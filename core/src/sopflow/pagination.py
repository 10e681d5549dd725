"""Keyset (cursor) pagination by id: stable under inserts, O(page) per page."""

from __future__ import annotations

import re
from typing import Any

import sqlalchemy as sa

from sopflow.errors import InvalidInput

MAX_LIMIT = 500
#: The largest id the API takes: ids are 32-bit integer columns on Postgres (a
#: larger value would overflow the driver), and ids count up from 1.  It is exact
#: in every JSON client and in a JSON Schema bound (a float).
MAX_ID = 2**31 - 1


#: A cursor: the last id of the previous page, in decimal.  Any value of the
#: pattern is a page (one past every id is the empty page), so the schema states
#: exactly what the server accepts.
CURSOR_PATTERN = "^[0-9]{1,10}$"
_CURSOR = re.compile(CURSOR_PATTERN)


def decode_cursor(cursor: str | None) -> int:
    if not cursor:
        return 0
    if not _CURSOR.fullmatch(cursor):
        raise InvalidInput([("cursor", "not a cursor from a previous page; omit it to start over")])
    return min(int(cursor), MAX_ID)


def encode_cursor(last_id: int) -> str:
    return str(last_id)


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

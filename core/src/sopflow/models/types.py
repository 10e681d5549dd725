"""Column types that behave the same on SQLite and Postgres.

Datetimes are stored as naive UTC and come back aware, so comparisons in the
rule compiler and in Python agree on both back-ends.  JSON is JSONB on Postgres.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB


class UTCDateTime(sa.TypeDecorator):
    impl = sa.DateTime(timezone=False)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime: pass an aware datetime (UTC)")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC)

    # SQLite stores datetimes as text, which SQLAlchemy formats and parses in Python
    # (a regular expression per value): on the hot paths that was a large part of
    # loading and writing a row.  The same text ("YYYY-MM-DD HH:MM:SS.ffffff", so
    # comparisons in SQL stay right) is made and read with the C-level isoformat
    # functions instead.

    def bind_processor(self, dialect: Any) -> Any:
        if dialect.name != "sqlite":
            return super().bind_processor(dialect)

        def process(value: datetime | None) -> str | None:
            if value is None:
                return None
            if value.tzinfo is None:
                raise ValueError("naive datetime: pass an aware datetime (UTC)")
            return value.astimezone(UTC).replace(tzinfo=None).isoformat(" ", "microseconds")

        return process

    def result_processor(self, dialect: Any, coltype: Any) -> Any:
        if dialect.name != "sqlite":
            return super().result_processor(dialect, coltype)

        def process(value: str | None) -> datetime | None:
            return None if value is None else datetime.fromisoformat(value).replace(tzinfo=UTC)

        return process


JSONType = sa.JSON().with_variant(JSONB(), "postgresql")

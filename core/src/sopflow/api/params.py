"""Typed path and query parameters: the bounds the server enforces, stated in the
OpenAPI so clients (and schemathesis) see them.  An id beyond a database integer
is refused here, before any query, instead of overflowing the driver."""

from __future__ import annotations

from typing import Annotated

import msgspec
from litestar.params import Parameter

from sopflow.pagination import CURSOR_PATTERN, MAX_ID, MAX_LIMIT

#: A row id in a path or query parameter.
Id = Annotated[int, Parameter(ge=1, le=MAX_ID, description="a row id (1 to 2^31-1)")]

#: A row id inside a request body.
BodyId = Annotated[int, msgspec.Meta(ge=1, le=MAX_ID, description="a row id (1 to 2^31-1)")]


#: A page size (``limit: Limit = 50``).
Limit = Annotated[int, Parameter(ge=1, le=MAX_LIMIT, description=f"page size, 1 to {MAX_LIMIT}")]


#: A page size inside a request body.
BodyLimit = Annotated[int, msgspec.Meta(ge=1, le=MAX_LIMIT, description=f"page size, 1 to {MAX_LIMIT}")]

#: An optional row id filter in a query (``customer_id: OptionalId = None``).
OptionalId = Annotated[int | None, Parameter(ge=1, le=MAX_ID, description="a row id (1 to 2^31-1)")]

#: An optional cursor.
OptionalCursor = Annotated[
    str | None,
    Parameter(pattern=CURSOR_PATTERN, description="the next_cursor of the previous page"),
]

#: An optional instant in a query (``due_after: OptionalInstant = None``).
OptionalInstant = Annotated[
    str | None,
    Parameter(
        max_length=64,
        description="an ISO-8601 instant with an offset, e.g. 2026-05-01T09:00:00+08:00",
        schema_extra={"format": "date-time"},
    ),
]

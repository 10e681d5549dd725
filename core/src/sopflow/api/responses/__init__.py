"""Success bodies: one msgspec Struct per shape a route answers with.

The engine's read models return plain dicts (the JSON the docs quote); a
handler passes its dict through :func:`shape`, which checks it against the
route's declared type — a key the type does not name is an error, never a key
silently dropped — so the OpenAPI's response schema (api/response_schemas.py)
and the wire agree.  A key that is only sometimes present is ``UNSET`` by
default (omitted when absent); a key that is always present but may be empty
is ``X | None``."""

from __future__ import annotations

from typing import Annotated, Any, TypeVar

import msgspec

T = TypeVar("T")

#: A timestamp on the wire: ISO 8601 with its offset.
Instant = Annotated[str, msgspec.Meta(description="an ISO-8601 instant with its offset")]


class Out(msgspec.Struct, forbid_unknown_fields=True):
    """The base of every response body."""


def shape(kind: type[T], value: Any) -> T:
    """``value`` (plain dicts and lists) as ``kind``; raises if it does not fit."""
    return msgspec.convert(value, kind)

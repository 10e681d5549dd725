"""The fake WeCom's route table and the helpers every API handler shares.

A handler takes ``(state, query, body)`` and returns the JSON answer without
``errcode`` (added by the server) or raises ``ApiError``.  Handlers live in
``api.py`` (customers, contact ways, sends), ``tag_api.py`` (the corp tag
library), ``transfer_api.py`` (handing customers and groups to another
member), ``moments_api.py`` (moments and their likes and comments) and
``sidebar_api.py`` (jsapi tickets, OAuth codes); importing
``sopflow_wecom.fake.server`` registers them all.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from sopflow_wecom.fake.state import ApiError, FakeState

Handler = Callable[[FakeState, Mapping[str, str], Mapping[str, Any]], Mapping[str, Any]]
ROUTES: dict[str, Handler] = {}


def route(path: str) -> Callable[[Handler], Handler]:
    def add(fn: Handler) -> Handler:
        ROUTES[path] = fn
        return fn

    return add


def page(items: list[Any], cursor: str, limit: int, cap: int) -> tuple[list[Any], str]:
    """One page of ``items`` from an opaque ``cursor`` and the next cursor ("" at the end)."""
    if limit < 1 or limit > cap:
        raise ApiError(40058, f"limit must be within 1..{cap}")
    start = int(cursor) if cursor.isdigit() else 0
    end = start + limit
    return items[start:end], (str(end) if end < len(items) else "")


def arg(data: Mapping[str, Any], name: str) -> Any:
    """A required parameter (40058 when missing or empty)."""
    if data.get(name) in (None, "", []):
        raise ApiError(40058, f"missing parameter {name}")
    return data[name]


def now_s(s: FakeState) -> int:
    """The fake's clock in whole seconds: WeCom's timestamps and time filters are
    integers, so a time stored as a float would fall outside ``[start, now]`` for
    the rest of the second it was made in."""
    return int(s.clock())

"""Stored forms of field values: what writers store and what both back-ends compare.

Text and choice are strings; numbers are JSON numbers (never booleans, integers
within ±2**53 so every back-end compares them exactly); bools are true/false;
dates are ``YYYY-MM-DD``; datetimes are ``datetime.isoformat()`` of the UTC
instant (``2026-05-01T01:00:00+00:00``, microseconds only when non-zero);
multi-choice values are sorted lists of distinct strings.

Because dates and datetimes are stored in one canonical form, comparing the
strings compares the instants, and both back-ends compare the strings.

A stored value of the wrong JSON type (a string in a number field, …) counts as
*no value*, exactly like a missing key or JSON null.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import UTC, date, datetime
from typing import Any

MAX_EXACT_INT = 2**53
MAX_TEXT = 2000


#: what to say where ``nul_paths`` found one
NUL_FIX = "contains a NUL character (\\u0000), which cannot be stored; remove it"


def nul_paths(value: Any, path: str) -> list[str]:
    """Where a free JSON document (an event payload, a channel config) holds a NUL
    character, in a key or a string: Postgres's JSONB cannot store one, so it must
    be refused as input rather than fail the write."""
    if isinstance(value, str):
        return [path] if "\x00" in value else []
    if isinstance(value, dict):
        found = []
        for k, v in value.items():
            shown = str(k).replace("\x00", "\\u0000")
            sub = f"{path}.{shown}" if path else shown
            found += [sub] if "\x00" in str(k) else nul_paths(v, sub)
        return found
    if isinstance(value, list):
        return [p for i, v in enumerate(value) for p in nul_paths(v, f"{path}[{i}]")]
    return []


def to_storage(type: str, value: Any, choices: Sequence[str] = ()) -> Any:
    """Validate ``value`` for a field of ``type`` and return its stored form: the
    one set of rules for every writer (the API, ingest, keyword rules, SOP data
    actions) and for the values rules compare against.

    ``None`` stays ``None`` (clears the value).  Raises ``ValueError`` saying
    what is expected.  ``choices`` is checked for choice and multi_choice.
    """
    if value is None:
        return None
    if type in ("text", "choice"):
        if not isinstance(value, str):
            raise ValueError(f"expected text, got {_kind(value)}")
        if "\x00" in value:
            raise ValueError("text must not contain NUL characters")
        if len(value) > MAX_TEXT:
            raise ValueError(f"text longer than {MAX_TEXT} characters")
        if type == "choice" and choices and value not in choices:
            raise ValueError(f"{value!r} is not one of {list(choices)}")
        return value
    if type == "number":
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValueError(f"expected a number, got {_kind(value)} {value!r}")
        if isinstance(value, float) and not math.isfinite(value):
            raise ValueError("expected a finite number")
        if isinstance(value, int) and abs(value) > MAX_EXACT_INT:
            raise ValueError(f"{value!r} is out of range: integers must be within ±2**53")
        return value
    if type == "bool":
        if not isinstance(value, bool):
            raise ValueError(f"expected true or false, got {value!r}")
        return value
    if type == "date":
        return _date(value).isoformat()
    if type == "datetime":
        return parse_instant(value).isoformat()
    if type == "multi_choice":
        if not isinstance(value, list | tuple) or any(not isinstance(v, str) for v in value):
            raise ValueError("expected a list of choices")
        bad = [v for v in value if choices and v not in choices]
        if bad:
            raise ValueError(f"{bad} not among the choices {list(choices)}")
        return sorted(set(value))
    raise ValueError(f"unsupported field type {type!r}")


def _kind(value: Any) -> str:
    return type(value).__name__


def _date(value: Any) -> date:
    if isinstance(value, date) and not isinstance(value, datetime):
        return value
    if isinstance(value, str):
        try:
            return date.fromisoformat(value) if len(value) == 10 else _bad_date(value)
        except ValueError:
            pass
    return _bad_date(value)


def _bad_date(value: Any) -> date:
    raise ValueError(f"{value!r} is not a date 'YYYY-MM-DD'")


def parse_instant(value: Any) -> datetime:
    """An aware datetime (in UTC) from a datetime or an ISO-8601 string with an
    offset; naive is refused because guessing the zone would shift it by hours."""
    parsed: datetime | None = None
    if isinstance(value, datetime):
        parsed = value
    elif isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            parsed = None
    if parsed is None:
        raise ValueError(f"{value!r} is not an ISO-8601 datetime like '2026-05-01T09:00:00+08:00'")
    if parsed.tzinfo is None:
        raise ValueError(f"{value!r} has no UTC offset; add one, e.g. '+08:00' or 'Z'")
    try:
        return parsed.astimezone(UTC)
    except OverflowError:  # 9999-12-31T23:59-23:59 is in year 10000 in UTC
        raise ValueError(f"{value!r} is outside the years 0001 to 9999 in UTC") from None


def format_instant(when: datetime) -> str:
    """The stored form of an aware instant (used for rule bounds too)."""
    return when.astimezone(UTC).isoformat()


def typed_value(type: str, raw: Any) -> Any:
    """The stored value if it has the JSON type ``type`` stores, else ``None``."""
    if type in ("text", "choice", "date", "datetime"):
        return raw if isinstance(raw, str) else None
    if type == "number":
        return raw if isinstance(raw, int | float) and not isinstance(raw, bool) else None
    if type == "bool":
        return raw if isinstance(raw, bool) else None
    if type == "multi_choice":
        return raw if isinstance(raw, list) else None
    return None

"""Durations (``30d``, ``12h``, ``2w``, ``90m``) and the bounds of date-relative
predicates, computed once in Python and shared by both back-ends.

On ``datetime`` fields a duration is absolute: ``within_last 30d`` means
``now - 30 days <= value <= now``.  On ``date`` fields it counts calendar days
from the customer's local today, the date of ``now`` in their time zone (else the
tenant's), so DST never shifts a date window.
"""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sopflow.conditions.storage import format_instant

DURATION = re.compile(r"(0|[1-9][0-9]{0,6})([mhdw])")
UNITS = {"m": timedelta(minutes=1), "h": timedelta(hours=1), "d": timedelta(days=1), "w": timedelta(weeks=1)}
MAX_DURATION = timedelta(days=36600)
#: the largest number each unit takes: seven digits, and at most ``MAX_DURATION``
DURATION_UNIT_MAX = {unit: min(9_999_999, MAX_DURATION // span) for unit, span in UNITS.items()}


def parse_duration(text: object) -> timedelta:
    """``"30d"`` → 30 days.  Raises ``ValueError`` with the expected form."""
    match = DURATION.fullmatch(text) if isinstance(text, str) else None
    if match is None:
        raise ValueError(
            f"{text!r} is not a duration; write a whole number and a unit: '90m', '12h', '30d', '2w'"
        )
    span = int(match.group(1)) * UNITS[match.group(2)]
    if span > MAX_DURATION:
        raise ValueError(f"{text!r} is longer than 100 years")
    return span


@lru_cache(maxsize=512)
def zone(name: str | None) -> ZoneInfo | None:
    """The zone for an IANA name, or ``None`` when the name is unknown or empty."""
    if not name:
        return None
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return None


def resolve_timezone(customer_tz: str | None, tenant_tz: str) -> str:
    """The customer's zone when it is a known IANA name, else the tenant's."""
    return customer_tz if zone(customer_tz) is not None else tenant_tz


def local_today(now: datetime, tz_name: str) -> date:
    tz = zone(tz_name)
    if tz is None:
        raise ValueError(f"unknown time zone {tz_name!r}; use an IANA name such as 'Asia/Shanghai'")
    return now.astimezone(tz).date()


def _shift(day: date, days: int) -> str:
    try:
        return (day + timedelta(days=days)).isoformat()
    except OverflowError:
        return (date.max if days > 0 else date.min).isoformat()


def date_bounds(op: str, span: timedelta, today: date) -> tuple[str | None, str | None, bool]:
    """``(low, high, low_inclusive)`` over stored ``YYYY-MM-DD`` strings; ``None`` = open."""
    days = span.days
    if op == "within_last":
        return _shift(today, -days), today.isoformat(), True
    if op == "within_next":
        return today.isoformat(), _shift(today, days), True
    return None, _shift(today, -days), False  # older_than: value < today - days


def datetime_bounds(op: str, span: timedelta, now: datetime) -> tuple[str | None, str | None, bool]:
    """Like :func:`date_bounds` over stored instants; older_than is strict."""
    if op == "within_last":
        return format_instant(now - span), format_instant(now), True
    if op == "within_next":
        return format_instant(now), format_instant(now + span), True
    return None, format_instant(now - span), False


def in_bounds(value: str, bounds: tuple[str | None, str | None, bool]) -> bool:
    """Python's reading of a bound triple; the SQL compiler emits the same tests."""
    low, high, _inclusive = bounds
    if low is None:
        return high is not None and value < high
    return low <= value <= high if high is not None else low <= value

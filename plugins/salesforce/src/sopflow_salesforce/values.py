"""Field values between Salesforce's JSON and sopflow's stored forms.

Salesforce: multipicklists as ``"A;B"``, dateTimes as ``2026-01-02T03:04:05.000+0000``,
dates as ``YYYY-MM-DD``.  sopflow stores multi-choice as a list, datetime as
ISO-8601 in UTC (``…+00:00``).  Bulk API 2.0 CSV has every value as text
(empty for null), so ``from_csv`` types them first.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any


def to_sopflow(value: Any, kind: str) -> Any:
    """A Salesforce value in sopflow's stored form for a field of type ``kind``."""
    if value is None or value == "":
        return None
    if kind == "multi_choice":
        return sorted(v for v in str(value).split(";") if v)
    if kind == "datetime":
        text = str(value).replace("Z", "+0000")
        parsed = datetime.strptime(text[:19] + text[-5:], "%Y-%m-%dT%H:%M:%S%z")
        return parsed.astimezone(UTC).isoformat()
    if kind == "number":
        number = float(value)
        return int(number) if number.is_integer() else number
    if kind == "bool":
        return value if isinstance(value, bool) else str(value).lower() == "true"
    return str(value)


def to_salesforce(value: Any, kind: str) -> Any:
    """A sopflow stored value as Salesforce takes it for a field of type ``kind``."""
    if value is None:
        return None
    if kind == "multi_choice":
        return ";".join(value)
    if kind == "datetime":
        parsed = datetime.fromisoformat(str(value)).astimezone(UTC)
        return parsed.strftime("%Y-%m-%dT%H:%M:%S.000+0000")
    return value


def soql_datetime(modstamp: str) -> str:
    """A stored ``SystemModstamp`` as a SOQL dateTime literal, to the second (SOQL's precision)."""
    return modstamp[:19] + "Z"


def normalise_modstamp(value: str) -> str:
    """``SystemModstamp`` in REST's form (``….000+0000``): Bulk CSV writes ``….000Z``,
    and the links compare stamps as strings."""
    return value[:-1] + "+0000" if value.endswith("Z") else value

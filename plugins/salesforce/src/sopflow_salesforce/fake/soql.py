"""The slice of SOQL the connector sends, parsed the way Salesforce reads it.

``SELECT f1, f2 FROM Object [WHERE cond [AND cond]...] [ORDER BY f [, f]] [LIMIT n]``
where a condition is ``Field op literal`` (``=``, ``!=``, ``>``, ``>=``, ``<``,
``<=``, ``IN (...)``; a quoted string, a number, ``true``/``false``/``null`` or a dateTime
literal such as ``2026-01-02T03:04:05Z``).  Anything else is refused with
Salesforce's ``MALFORMED_QUERY``, so a client that drifts from what the fake
understands fails loudly instead of being answered wrongly.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

import attrs

_QUERY = re.compile(
    r"^\s*SELECT\s+(?P<fields>.+?)\s+FROM\s+(?P<object>\w+)"
    r"(?:\s+WHERE\s+(?P<where>.+?))?"
    r"(?:\s+ORDER\s+BY\s+(?P<order>[\w\s,]+?))?"
    r"(?:\s+LIMIT\s+(?P<limit>\d+))?\s*$",
    re.IGNORECASE | re.DOTALL,
)
_COND = re.compile(r"^\s*(\w+)\s*(=|!=|>=|<=|>|<)\s*('(?:[^'\\]|\\.)*'|\S+)\s*$")
_IN = re.compile(r"^\s*(\w+)\s+IN\s*\((.*)\)\s*$", re.IGNORECASE | re.DOTALL)
_DATETIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,3})?(Z|[+-]\d{2}:\d{2})$")
_OPS: dict[str, Callable[[Any, Any], bool]] = {
    "=": lambda a, b: a == b,
    "!=": lambda a, b: a != b,
    ">": lambda a, b: a is not None and a > b,
    ">=": lambda a, b: a is not None and a >= b,
    "<": lambda a, b: a is not None and a < b,
    "<=": lambda a, b: a is not None and a <= b,
    "IN": lambda a, b: a in b,
}


class MalformedQuery(ValueError):
    """Salesforce answers these with 400 ``MALFORMED_QUERY``."""


@attrs.frozen
class Query:
    fields: tuple[str, ...]
    object: str
    conditions: tuple[tuple[str, str, Any], ...]
    order_by: tuple[str, ...]
    limit: int | None


def _literal(text: str) -> Any:
    if text.startswith("'"):
        return text[1:-1].replace("\\'", "'")
    low = text.lower()
    if low in ("true", "false"):
        return low == "true"
    if low == "null":
        return None
    if _DATETIME.match(text):
        return normalise_datetime(text)
    try:
        return float(text) if "." in text else int(text)
    except ValueError as exc:
        raise MalformedQuery(f"unexpected token: '{text}'") from exc


def normalise_datetime(text: str) -> str:
    """A dateTime literal as the fake stores ``SystemModstamp``: ``…T..:..:..000+0000``."""
    head = text[:19]
    millis = (text[20:23] if len(text) > 19 and text[19] == "." else "000").ljust(3, "0")
    return f"{head}.{millis}+0000"


def parse(soql: str) -> Query:
    """The query, or ``MalformedQuery`` naming what the fake does not understand."""
    m = _QUERY.match(soql)
    if not m:
        raise MalformedQuery(f"unexpected query: {soql[:80]!r}")
    fields = tuple(f.strip() for f in m["fields"].split(","))
    if not all(re.fullmatch(r"\w+", f) for f in fields):
        raise MalformedQuery("only plain field names are supported in SELECT")
    conditions = []
    for part in re.split(r"\s+AND\s+", m["where"] or "", flags=re.IGNORECASE) if m["where"] else ():
        within = _IN.match(part)
        if within:
            items = re.findall(r"'(?:[^'\\]|\\.)*'|[^,\s]+", within[2])
            conditions.append((within[1], "IN", tuple(_literal(i) for i in items)))
            continue
        c = _COND.match(part)
        if not c:
            raise MalformedQuery(f"unexpected condition: {part!r}")
        conditions.append((c[1], c[2], _literal(c[3])))
    order = tuple(o.strip().split()[0] for o in (m["order"] or "").split(",") if o.strip())
    limit = int(m["limit"]) if m["limit"] else None
    return Query(fields, m["object"], tuple(conditions), order, limit)


def run(query: Query, records: list[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The selected fields of the matching records, ordered and limited."""
    hits = [r for r in records if all(_OPS[op](r.get(f), v) for f, op, v in query.conditions)]
    for key in reversed(query.order_by):
        hits.sort(key=lambda r, k=key: (r.get(k) is None, r.get(k) or ""))
    if query.limit is not None:
        hits = hits[: query.limit]
    return [{f: r.get(f) for f in query.fields} for r in hits]

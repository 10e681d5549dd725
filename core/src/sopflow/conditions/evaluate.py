"""The Python back-end: does one customer match a rule right now?

Used at event time, for one customer.  It reads a :class:`CustomerSnapshot`
and must agree with the SQL compiler on every input (the property tests prove
it), so it follows the same two-valued semantics: a comparison on a missing,
null or wrongly-typed value is false, and ``not`` is plain negation.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

import attrs

from sopflow.conditions.nodes import (
    All,
    Any_,
    ChurnPredicate,
    EventPredicate,
    FieldPredicate,
    Node,
    Not,
    Rule,
    SourcePredicate,
    StagePredicate,
    TagPredicate,
)
from sopflow.conditions.storage import typed_value
from sopflow.conditions.windows import date_bounds, datetime_bounds, in_bounds, local_today


def _no_events(event_type: str, since: datetime | None) -> int:
    return 0


@attrs.frozen
class CustomerSnapshot:
    """What a rule can see of one customer.

    ``timezone`` is already resolved (the customer's if it is a known zone, else
    the tenant's).  ``event_counts(type, since)`` counts the customer's events of
    ``type`` that occurred at or after ``since`` (all of them when ``None``).
    ``merged`` customers never match.
    """

    fields: Mapping[str, Any] = attrs.field(factory=dict)
    tags: frozenset[str] = frozenset()
    stages: Mapping[int, str] = attrs.field(factory=dict)
    churned: bool = False
    source: str | None = None
    timezone: str = "UTC"
    event_counts: Callable[[str, datetime | None], int] = _no_events
    merged: bool = False


def evaluate(rule: Rule, customer: CustomerSnapshot, now: datetime) -> bool:
    """True when ``customer`` matches ``rule`` at the instant ``now`` (aware)."""
    if now.tzinfo is None:
        raise ValueError("naive datetime: pass an aware 'now'")
    if customer.merged:
        return False
    return _eval(rule.root, customer, now)


def _eval(node: Node, c: CustomerSnapshot, now: datetime) -> bool:
    if isinstance(node, All):
        return all(_eval(child, c, now) for child in node.children)
    if isinstance(node, Any_):
        return any(_eval(child, c, now) for child in node.children)
    if isinstance(node, Not):
        return not _eval(node.child, c, now)
    if isinstance(node, FieldPredicate):
        return _field(node, c, now)
    if isinstance(node, TagPredicate):
        if node.mode == "any_of":
            return not c.tags.isdisjoint(node.tags)
        if node.mode == "all_of":
            return c.tags.issuperset(node.tags)
        return c.tags.isdisjoint(node.tags)
    if isinstance(node, StagePredicate):
        return c.stages.get(node.pipeline_id) in node.names
    if isinstance(node, ChurnPredicate):
        return c.churned == node.churned
    if isinstance(node, SourcePredicate):
        return c.source is not None and c.source in node.sources
    if isinstance(node, EventPredicate):
        since = now - node.within if node.within is not None else None
        n = c.event_counts(node.type, since)
        return n >= node.min and (node.max is None or n <= node.max)
    raise TypeError(f"unknown rule node {node!r}")


def _field(node: FieldPredicate, c: CustomerSnapshot, now: datetime) -> bool:
    v = typed_value(node.type, c.fields.get(node.field))
    op, target = node.op, node.value
    if op == "exists":
        return (v is not None) == target
    if v is None:
        return False
    if op == "eq":
        return bool(v == target)
    if op == "ne":
        return bool(v != target)
    if op == "lt":
        return bool(v < target)
    if op == "lte":
        return bool(v <= target)
    if op == "gt":
        return bool(v > target)
    if op == "gte":
        return bool(v >= target)
    if op == "in":
        return v in target
    if op == "not_in":
        return v not in target
    if op == "between":
        return bool(target[0] <= v <= target[1])
    if op == "contains":
        return target in v
    if node.type == "date":
        return in_bounds(v, date_bounds(op, target, local_today(now, c.timezone)))
    return in_bounds(v, datetime_bounds(op, target, now))

"""The SQL back-end: a rule as a SQLAlchemy boolean over ``customers``.

Used for audiences, counts and journey sync over all customers.  It agrees
with :func:`sopflow.conditions.evaluate.evaluate` on every input:

* SQL's three-valued logic is turned into two-valued logic: a comparison on no
  value is NULL, which AND/OR treat like false, and every ``not`` wraps its
  child in ``coalesce(child, false)`` when the child can be NULL, so ``not`` is
  Python's ``not``.
* Tags, stages and event counts are correlated EXISTS / scalar subqueries.
* Date-relative predicates on ``date`` fields compare against the customer's
  local today: a CASE over ``coalesce(customers.timezone, tenant zone)`` with a
  bound precomputed in Python per zone, so DST and offsets match exactly.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.sql.elements import ColumnElement

from sopflow.conditions import sql_values as sv
from sopflow.conditions.nodes import (
    RELATIVE_OPS,
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
    walk,
)
from sopflow.conditions.windows import date_bounds, datetime_bounds, local_today, zone
from sopflow.models import CustomerStage, CustomerTag, Event, Stage

customers = sv.customers
tags_t = CustomerTag.__table__
stages_t = CustomerStage.__table__
stage_names = Stage.__table__
events_t = Event.__table__

Compiled = tuple[ColumnElement[bool], bool]  # (expression, may be NULL)


def needs_timezones(rule: Rule) -> bool:
    """True when the rule has a date-relative predicate on a ``date`` field."""
    return any(
        isinstance(n, FieldPredicate) and n.type == "date" and n.op in RELATIVE_OPS for n in walk(rule.root)
    )


def compile_rule(
    rule: Rule,
    *,
    tenant_id: int,
    tenant_timezone: str,
    now: datetime,
    timezones: Iterable[str | None] | None = None,
) -> ColumnElement[bool]:
    """The rule as a WHERE clause over ``customers`` (tenant-scoped, unmerged only).

    ``timezones`` lists the distinct ``customers.timezone`` values of the tenant;
    it is needed only when :func:`needs_timezones` is true (``select_customers``
    and ``count_customers`` read it from the database for you).
    """
    if now.tzinfo is None:
        raise ValueError("naive datetime: pass an aware 'now'")
    if zone(tenant_timezone) is None:
        raise ValueError(f"unknown tenant time zone {tenant_timezone!r}")
    if timezones is None and needs_timezones(rule):
        raise ValueError("this rule has date-relative date conditions: pass timezones=")
    ctx = _Context(tenant_id, tenant_timezone, now, timezones or ())
    expr, _nullable = ctx.node(rule.root)
    return sa.and_(customers.c.tenant_id == tenant_id, customers.c.merged_into_id.is_(None), expr)


class _Context:
    def __init__(
        self, tenant_id: int, tenant_tz: str, now: datetime, timezones: Iterable[str | None]
    ) -> None:
        self.tenant_id = tenant_id
        self.tenant_tz = tenant_tz
        self.now = now
        # Group the zones by local today: usually two or three branches at most.
        by_day: dict[date, list[str]] = {}
        for name in sorted({tz for tz in timezones if tz and zone(tz) is not None}):
            if name != tenant_tz:
                by_day.setdefault(local_today(now, name), []).append(name)
        self.zone_days = by_day
        self.tenant_today = local_today(now, tenant_tz)

    def node(self, node: Node) -> Compiled:
        if isinstance(node, All | Any_):
            parts = [self.node(child) for child in node.children]
            join = sa.and_ if isinstance(node, All) else sa.or_
            return join(*(e for e, _ in parts)), any(n for _, n in parts)
        if isinstance(node, Not):
            expr, nullable = self.node(node.child)
            inner = sa.func.coalesce(expr, sa.false()) if nullable else expr
            return sa.not_(inner), False
        if isinstance(node, FieldPredicate):
            return self.field(node)
        if isinstance(node, TagPredicate):
            return self.tags(node), False
        if isinstance(node, StagePredicate):
            return self.stage(node), False
        if isinstance(node, ChurnPredicate):
            col = customers.c.churned_at
            return (col.is_not(None) if node.churned else col.is_(None)), False
        if isinstance(node, SourcePredicate):
            return customers.c.source.in_(list(node.sources)), True
        if isinstance(node, EventPredicate):
            return self.events(node), False
        raise TypeError(f"unknown rule node {node!r}")

    def field(self, p: FieldPredicate) -> Compiled:
        op, v = p.op, p.value
        if op == "exists":
            has = sv.present(p.type, p.field)
            return (has if v else sa.not_(has)), False
        if op == "eq":
            return sv.equals(p.type, p.field, (v,)), False
        if op == "in":
            return sv.equals(p.type, p.field, v), False
        if op == "contains":
            if p.type == "multi_choice":
                return sv.array_contains(p.field, v), False
            return sv.text_contains(p.field, v), True
        typed = sv.typed_value(p.type, p.field)
        if p.type == "bool":
            v = int(v)
        elif p.type == "number":
            # Bound as doubles: exact for stored numbers, and Postgres would bind
            # a large Python int as a 4-byte INTEGER.
            v = tuple(float(x) for x in v) if isinstance(v, tuple) else float(v)
        if op in RELATIVE_OPS:
            return self.relative(p, typed), True
        simple = {
            "ne": lambda: typed != v,
            "lt": lambda: typed < v,
            "lte": lambda: typed <= v,
            "gt": lambda: typed > v,
            "gte": lambda: typed >= v,
            "not_in": lambda: typed.not_in(list(v)),
            "between": lambda: typed.between(v[0], v[1]),
        }
        return simple[op](), True

    def relative(self, p: FieldPredicate, typed: ColumnElement[Any]) -> ColumnElement[bool]:
        if p.type == "datetime":
            low, high, _ = datetime_bounds(p.op, p.value, self.now)
            return typed < high if low is None else sa.and_(typed >= low, typed <= high)
        if not self.zone_days:
            low, high, _ = date_bounds(p.op, p.value, self.tenant_today)
            return typed < high if low is None else sa.and_(typed >= low, typed <= high)
        tz = sa.func.coalesce(customers.c.timezone, self.tenant_tz)

        def bound(index: int) -> ColumnElement[Any]:
            whens = [
                (tz.in_(names), date_bounds(p.op, p.value, day)[index])
                for day, names in self.zone_days.items()
            ]
            return sa.case(*whens, else_=date_bounds(p.op, p.value, self.tenant_today)[index])

        if p.op == "older_than":
            return typed < bound(1)
        return sa.and_(typed >= bound(0), typed <= bound(1))

    def tags(self, p: TagPredicate) -> ColumnElement[bool]:
        def has(tags: Iterable[str]) -> ColumnElement[bool]:
            return (
                sa.select(sa.literal(1))
                .select_from(tags_t)
                .where(
                    tags_t.c.tenant_id == self.tenant_id,
                    tags_t.c.tag.in_(list(tags)),
                    tags_t.c.customer_id == customers.c.id,
                )
                .exists()
            )

        if p.mode == "any_of":
            return has(p.tags)
        if p.mode == "none_of":
            return sa.not_(has(p.tags))
        return sa.and_(*(has([t]) for t in dict.fromkeys(p.tags)))

    def stage(self, p: StagePredicate) -> ColumnElement[bool]:
        return (
            sa.select(sa.literal(1))
            .select_from(stages_t.join(stage_names, stage_names.c.id == stages_t.c.stage_id))
            .where(
                stages_t.c.customer_id == customers.c.id,
                stages_t.c.pipeline_id == p.pipeline_id,
                stage_names.c.name.in_(list(p.names)),
            )
            .exists()
        )

    def events(self, p: EventPredicate) -> ColumnElement[bool]:
        conds = [
            events_t.c.customer_id == customers.c.id,
            events_t.c.tenant_id == self.tenant_id,
            events_t.c.type == p.type,
        ]
        if p.within is not None:
            conds.append(events_t.c.occurred_at >= self.now - p.within)
        if p.min == 0 and p.max is None:
            return sa.true()
        any_event = sa.select(sa.literal(1)).select_from(events_t).where(*conds).exists()
        if p.min == 1 and p.max is None:
            return any_event
        if p.min == 0 and p.max == 0:
            return sa.not_(any_event)
        count = sa.select(sa.func.count()).select_from(events_t).where(*conds).scalar_subquery()
        checks = [count >= p.min] if p.min > 0 else []
        if p.max is not None:
            checks.append(count <= p.max)
        return sa.and_(*checks)

"""Run rules against the database: audiences (ids, counts) through the compiler,
and one customer's :class:`CustomerSnapshot` for the evaluator."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Session

from sopflow.conditions.compile import compile_rule, customers, events_t, needs_timezones, stage_names
from sopflow.conditions.compile import stages_t as customer_stages_t
from sopflow.conditions.compile import tags_t as customer_tags_t
from sopflow.conditions.evaluate import CustomerSnapshot
from sopflow.conditions.nodes import Rule
from sopflow.conditions.windows import resolve_timezone
from sopflow.models import Customer, Tenant


def _tenant_timezone(session: Session, tenant_id: int, given: str | None) -> str:
    if given is not None:
        return given
    tz = session.scalar(sa.select(Tenant.timezone).where(Tenant.id == tenant_id))
    if tz is None:
        raise LookupError(f"no tenant {tenant_id}")
    return tz


def audience_filter(
    session: Session, rule: Rule, tenant_id: int, *, now: datetime, tenant_timezone: str | None = None
) -> sa.ColumnElement[bool]:
    """``compile_rule`` with the tenant's zone and its customers' zones read from the database."""
    tenant_tz = _tenant_timezone(session, tenant_id, tenant_timezone)
    zones: list[str | None] = []
    if needs_timezones(rule):
        zones = list(
            session.scalars(
                sa.select(customers.c.timezone)
                .where(customers.c.tenant_id == tenant_id, customers.c.timezone.is_not(None))
                .distinct()
            )
        )
    return compile_rule(rule, tenant_id=tenant_id, tenant_timezone=tenant_tz, now=now, timezones=zones)


def select_customers(
    session: Session,
    rule: Rule,
    tenant_id: int,
    *,
    now: datetime,
    tenant_timezone: str | None = None,
    limit: int | None = None,
    after_id: int | None = None,
) -> list[int]:
    """Ids of the matching customers in id order; page with ``limit`` and ``after_id``."""
    where = audience_filter(session, rule, tenant_id, now=now, tenant_timezone=tenant_timezone)
    query = sa.select(customers.c.id).where(where).order_by(customers.c.id)
    if after_id is not None:
        query = query.where(customers.c.id > after_id)
    if limit is not None:
        query = query.limit(limit)
    return list(session.scalars(query))


def count_customers(
    session: Session, rule: Rule, tenant_id: int, *, now: datetime, tenant_timezone: str | None = None
) -> int:
    """How many customers match (the audience size)."""
    where = audience_filter(session, rule, tenant_id, now=now, tenant_timezone=tenant_timezone)
    return session.scalar(sa.select(sa.func.count()).select_from(customers).where(where)) or 0


def snapshot_customer(session: Session, customer: Customer, tenant_timezone: str) -> CustomerSnapshot:
    """What the evaluator needs about ``customer``, read now; event counts are read
    lazily (once per type and window) while ``session`` stays open."""
    return snapshot_customers(session, [customer], tenant_timezone)[customer.id]


def snapshot_customers(
    session: Session, many: Sequence[Customer], tenant_timezone: str | Mapping[int, str]
) -> dict[int, CustomerSnapshot]:
    """``snapshot_customer`` for many customers at once: their tags and stages are
    read in one statement each.  ``tenant_timezone``: one zone, or one per tenant id."""
    ids = [c.id for c in many]
    tenant_of = {c.id: c.tenant_id for c in many}
    tags: dict[int, set[str]] = {cid: set() for cid in ids}
    rows = session.execute(
        sa.select(customer_tags_t.c.customer_id, customer_tags_t.c.tenant_id, customer_tags_t.c.tag).where(
            customer_tags_t.c.customer_id.in_(ids)
        )
    )
    for cid, tenant_id, tag in rows:
        if tenant_of[cid] == tenant_id:  # a tag row of another tenant is never this customer's
            tags[cid].add(tag)
    stages: dict[int, dict[int, str]] = {cid: {} for cid in ids}
    rows = session.execute(
        sa.select(customer_stages_t.c.customer_id, customer_stages_t.c.pipeline_id, stage_names.c.name)
        .join(stage_names, stage_names.c.id == customer_stages_t.c.stage_id)
        .where(customer_stages_t.c.customer_id.in_(ids))
    )
    for cid, pipeline_id, name in rows:
        stages[cid][pipeline_id] = name
    zones = (
        tenant_timezone
        if not isinstance(tenant_timezone, str)
        else {c.tenant_id: tenant_timezone for c in many}
    )
    return {
        c.id: _snapshot(session, c, zones[c.tenant_id], frozenset(tags[c.id]), stages[c.id]) for c in many
    }


def _snapshot(
    session: Session, customer: Customer, tenant_timezone: str, tags: frozenset[str], stages: dict[int, str]
) -> CustomerSnapshot:
    cid = customer.id
    cache: dict[tuple[str, datetime | None], int] = {}

    def event_counts(event_type: str, since: datetime | None) -> int:
        if (event_type, since) not in cache:
            query = sa.select(sa.func.count()).where(
                events_t.c.customer_id == cid,
                events_t.c.tenant_id == customer.tenant_id,
                events_t.c.type == event_type,
            )
            if since is not None:
                query = query.where(events_t.c.occurred_at >= since)
            cache[(event_type, since)] = session.scalar(query) or 0
        return cache[(event_type, since)]

    return CustomerSnapshot(
        fields=dict(customer.fields or {}),
        tags=tags,
        stages=stages,
        churned=customer.churned_at is not None,
        source=customer.source,
        timezone=resolve_timezone(customer.timezone, tenant_timezone),
        event_counts=event_counts,
        merged=customer.merged_into_id is not None,
    )

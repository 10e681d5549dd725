"""Set-based enrolment of a nurture SOP's audience: per batch of matching
customers, one ``INSERT … SELECT`` of enrolments per time zone and one of
touches per step, instead of a Python loop over customers.

Every customer who enters at the same instant in the same zone has the same
schedule, so the due times are computed once per zone with
:func:`~sopflow.engine.sops.schedule.planned_times` and written as literals. The
selection is the same one :func:`~sopflow.engine.sops.enrolment.enroll` applies to each
customer: the target rule, sources and staff, and not the early-end rule (the entry guard),
both through the rule compiler that is proven to agree with the evaluator.
Customers who were enrolled before (re-entry) take the per-customer path, and
so does every customer of an SOP with a random split (each arm has its own steps).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from sopflow.conditions import audience_filter, resolve_timezone
from sopflow.conditions.compile import customers
from sopflow.engine.sops.enrolment import ACTIVE, SopRuntime
from sopflow.engine.sops.schedule import planned_times
from sopflow.models import ChannelIdentity, Enrollment, Staff, Touch
from sopflow.models.touch_status import TouchStatus


def staff_filter(staff: set[str]) -> sa.ColumnElement[bool]:
    """The customer is connected to one of these staff members (identity or owner),
    as :func:`~sopflow.engine.sops.enrolment.staff_of` decides for one customer."""
    ident, st = ChannelIdentity.__table__, Staff.__table__
    via_identity = (
        sa.exists()
        .select_from(ident.join(st, st.c.id == ident.c.staff_id))
        .where(ident.c.customer_id == customers.c.id, st.c.external_id.in_(staff))
    )
    owner = sa.exists().where(st.c.id == customers.c.owner_staff_id, st.c.external_id.in_(staff))
    return sa.or_(via_identity, owner)


def enrol_window(
    session: Session,
    runtime: SopRuntime,
    where: sa.ColumnElement[bool],
    now: datetime,
    tenant_tz: str,
    fallback: Callable[[int], bool],
) -> int:
    """Enrol every customer matching ``where`` (the batch window, target and
    filters); returns how many were enrolled. ``fallback(customer_id)`` enrols one
    customer the per-customer way (those with an earlier enrolment)."""
    sop = runtime.sop
    enr = Enrollment.__table__
    seen_before = sa.exists().where(enr.c.sop_id == sop.id, enr.c.customer_id == customers.c.id)
    if runtime.early_end is not None:
        ends = audience_filter(session, runtime.early_end, sop.tenant_id, now=now, tenant_timezone=tenant_tz)
        where = sa.and_(where, sa.not_(ends))
    enrolled = 0
    if runtime.definition.get("arms"):
        # each customer's arm (and so their steps) differs: the per-customer path
        for (customer_id,) in session.execute(sa.select(customers.c.id).where(where)):
            enrolled += int(fallback(customer_id))
        return enrolled
    if runtime.definition.get("reentry"):
        for (customer_id,) in session.execute(sa.select(customers.c.id).where(where, seen_before)):
            enrolled += int(fallback(customer_id))
    fresh = sa.and_(where, ~seen_before)
    # counted, not taken from rowcount: drivers report -1 for INSERT … SELECT
    enrolled += session.scalar(sa.select(sa.func.count()).select_from(customers).where(fresh)) or 0
    zones = list(session.scalars(sa.select(customers.c.timezone).where(fresh).distinct()))
    for raw_zone in zones:
        _enrol_zone(session, runtime, where, fresh, raw_zone, tenant_tz, now)
    return enrolled


def _enrol_zone(
    session: Session,
    runtime: SopRuntime,
    where: sa.ColumnElement[bool],
    fresh: sa.ColumnElement[bool],
    raw_zone: str | None,
    tenant_tz: str,
    now: datetime,
) -> None:
    """The fresh customers of one time zone (``raw_zone``: their own setting, None
    for the tenant's): their enrolments with one INSERT … SELECT, then their touches."""
    sop, version = runtime.sop, runtime.version
    enr = Enrollment.__table__
    tz = resolve_timezone(raw_zone, tenant_tz)
    in_zone = customers.c.timezone.is_(None) if raw_zone is None else customers.c.timezone == raw_zone
    session.execute(
        sa.insert(enr).from_select(
            [
                "tenant_id",
                "sop_id",
                "sop_version_id",
                "customer_id",
                "entry_seq",
                "status",
                "timezone",
                "enrolled_at",
                "depth",
                "rearmed",
            ],
            sa.select(
                sa.literal(sop.tenant_id),
                sa.literal(sop.id),
                sa.literal(version.id),
                customers.c.id,
                sa.literal(0),
                sa.literal(ACTIVE),
                sa.literal(tz),
                sa.literal(now, type_=enr.c.enrolled_at.type),
                sa.literal(0),
                sa.literal(False),
            ).where(fresh, in_zone),
        )
    )
    new = sa.and_(
        enr.c.sop_id == sop.id,
        enr.c.enrolled_at == now,
        enr.c.timezone == tz,
        enr.c.customer_id.in_(sa.select(customers.c.id).where(where, in_zone)),
    )
    _insert_touches(session, runtime, new, tz, now)


def _insert_touches(
    session: Session, runtime: SopRuntime, new: sa.ColumnElement[bool], tz: str, now: datetime
) -> None:
    """Each step's touch for the enrolments ``new`` selects, one INSERT … SELECT a step."""
    enr, touches = Enrollment.__table__, Touch.__table__
    for index, due in enumerate(planned_times(runtime.definition, now, tz)):
        outcome: dict[str, Any] = {} if due is not None else {"reason": "catch_up_skip"}
        when = due or now
        missing = ~sa.exists().where(touches.c.enrollment_id == enr.c.id, touches.c.step_index == index)
        session.execute(
            sa.insert(touches).from_select(
                [
                    "tenant_id",
                    "sop_id",
                    "enrollment_id",
                    "customer_id",
                    "step_index",
                    "status",
                    "planned_at",
                    "due_at",
                    "attempts",
                    "deferrals",
                    "outcome",
                ],
                sa.select(
                    enr.c.tenant_id,
                    enr.c.sop_id,
                    enr.c.id,
                    enr.c.customer_id,
                    sa.literal(index),
                    sa.literal(str(TouchStatus.SCHEDULED if due is not None else TouchStatus.SKIPPED)),
                    sa.literal(when, type_=touches.c.planned_at.type),
                    sa.literal(when, type_=touches.c.due_at.type),
                    sa.literal(0),
                    sa.literal(0),
                    sa.literal(outcome, type_=touches.c.outcome.type),
                ).where(new, missing),
            )
        )

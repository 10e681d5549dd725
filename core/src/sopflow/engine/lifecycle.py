"""What happens to enrolments when a customer's data changes: early end (F19),
normal end (F21), end actions and flows (F20), replies (F26), conversions (F24),
and new enrolments (F14, F15, F22).  ``on_customer_event`` is the evaluate step
of the data flow; it runs in a worker after each ingested event."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from sopflow.conditions import evaluate, parse, snapshot_customer
from sopflow.engine.customers import change_tags, record_change
from sopflow.engine.enroll import ACTIVE, SopRuntime, enroll, runtimes_for, staff_of, tenant_timezone
from sopflow.logging import get_logger
from sopflow.models import Customer, Enrollment, Sop, SopVersion, Touch

log = get_logger("sopflow.engine")
OPEN_TOUCH = ("scheduled", "claimed")


def runtime_of(session: Session, enrollment: Enrollment, fields: Mapping[str, Any]) -> SopRuntime:
    """The pinned version an enrolment entered with."""
    sop = session.get(Sop, enrollment.sop_id)
    version = session.get(SopVersion, enrollment.sop_version_id)
    assert sop is not None and version is not None
    return SopRuntime(sop, version, fields)


def end_enrollment(
    session: Session,
    enrollment: Enrollment,
    status: str,
    reason: str,
    now: datetime,
    fields: Mapping[str, Any],
    *,
    tags_add: list[str] | None = None,
    flow_to: int | None = None,
    cancel_open: bool = True,
) -> None:
    """End an enrolment: cancel what is still pending, apply end tags, flow on.
    ``cancel_open=False`` when the caller knows nothing is pending (completion)."""
    if enrollment.status != ACTIVE:
        return
    enrollment.status = status
    enrollment.ended_at = now
    enrollment.end_reason = reason
    if cancel_open:
        session.execute(
            sa.update(Touch)
            .where(Touch.enrollment_id == enrollment.id, Touch.status.in_(OPEN_TOUCH))
            .values(status="cancelled", outcome={"reason": reason})
            # open touches are never loaded where an enrolment ends; evaluating the
            # WHERE against every object in the session cost more than the UPDATE
            .execution_options(synchronize_session=False)
        )
    if not tags_add and flow_to is None:
        return
    customer = session.get(Customer, enrollment.customer_id)
    assert customer is not None
    if tags_add:
        record_change(
            session,
            customer,
            now,
            key=f"sop-end:{enrollment.id}",
            cause="sop_end",
            tags=change_tags(session, customer, add=tags_add),
            depth=enrollment.depth + 1,
            sop_id=enrollment.sop_id,
            end=status,
        )
    if flow_to is not None:
        target = session.scalar(
            sa.select(Sop).where(Sop.id == flow_to, Sop.tenant_id == enrollment.tenant_id)
        )
        if target is None or target.status != "started":
            log.warning("flow_target_not_started", sop_id=flow_to, enrollment_id=enrollment.id)
        else:
            version = session.scalar(
                sa.select(SopVersion).where(
                    SopVersion.sop_id == target.id, SopVersion.version == target.current_version
                )
            )
            assert version is not None
            enroll(
                session,
                SopRuntime(target, version, fields),
                customer,
                now,
                tenant_timezone=tenant_timezone(session, enrollment.tenant_id),
                flowed_from=enrollment.id,
                depth=enrollment.depth + 1,
            )
    session.flush()


def end_actions(definition: Mapping[str, Any], key: str) -> dict[str, Any]:
    end = definition.get(key) or {}
    return {"tags_add": list(end.get("tags_add") or []), "flow_to": end.get("flow_to")}


def on_customer_event(
    session: Session,
    tenant_id: int,
    event: Mapping[str, Any],
    now: datetime,
    fields: Mapping[str, Any],
    loop_guard_depth: int,
) -> dict[str, int]:
    """Evaluate one customer after ``event``.  Returns counts for logs and tests."""
    counts = {"ended": 0, "enrolled": 0, "replied": 0, "converted": 0}
    customer_id = event.get("customer_id")
    if customer_id is None:
        return counts
    if event.get("depth", 0) > loop_guard_depth:
        log.warning(
            "loop_guard_stopped", event_id=event.get("id"), depth=event.get("depth"), limit=loop_guard_depth
        )
        return counts
    customer = session.get(Customer, customer_id)
    if customer is None or customer.merged_into_id is not None:
        return counts
    tz = tenant_timezone(session, tenant_id)
    snapshot = snapshot_customer(session, customer, tz)
    occurred = datetime.fromisoformat(event["occurred_at"]) if event.get("occurred_at") else now

    active = list(
        session.scalars(
            sa.select(Enrollment).where(Enrollment.customer_id == customer.id, Enrollment.status == ACTIVE)
        )
    )
    for enrollment in active:
        runtime = runtime_of(session, enrollment, fields)
        if runtime.ends_early(snapshot, now):
            end_enrollment(
                session,
                enrollment,
                "ended_early",
                "early_end_rule",
                now,
                fields,
                **end_actions(runtime.definition, "on_early_end"),
            )
            counts["ended"] += 1

    counts["stage_enrolled"] = counts["moved"] = 0
    if event.get("type") == "stage.changed":
        from sopflow.engine.journey_placement import on_stage_entered  # journeys build on this module

        counts["stage_enrolled"] = on_stage_entered(
            session,
            tenant_id,
            customer,
            event.get("payload") or {},
            now,
            fields,
            tenant_timezone=tz,
            depth=int(event.get("depth", 0)) + 1,
        )

    if event.get("type") == "message.received":
        counts["replied"] = mark_replied(session, customer.id, occurred)
        from sopflow.engine.keywords import on_message  # F6: keyword rules tag and set fields

        counts["keyword_rules"] = on_message(session, customer, event, now, fields)
    counts["converted"] = mark_conversions(session, customer, event, snapshot, now, fields)

    from sopflow.engine.journey_placement import place

    # a move staff made by hand stands until the customer's data next changes
    by_hand = event.get("type") == "stage.changed" and (event.get("payload") or {}).get("cause") in (
        "manual",
        "api",
    )
    if not by_hand:
        counts["moved"] = place(session, tenant_id, customer, snapshot, now, fields, event)

    depth = int(event.get("depth", 0))
    staff_ids: set[str] | None = None
    for runtime in runtimes_for(session, tenant_id, fields):
        if runtime.sop.kind == "new_customer" and event.get("type") != "customer.added":
            continue
        if staff_ids is None:
            staff_ids = staff_of(session, customer)
        if runtime.targets(snapshot, staff_ids, now):
            if enroll(session, runtime, customer, now, tenant_timezone=tz, depth=depth, snapshot=snapshot):
                counts["enrolled"] += 1
        elif runtime.definition.get("reentry"):
            rearm(session, runtime.sop.id, customer.id)
    session.flush()
    return counts


def rearm(session: Session, sop_id: int, customer_id: int) -> None:
    """The target rule is false now: a later match may enrol the customer again."""
    session.execute(
        sa.update(Enrollment)
        .where(
            Enrollment.sop_id == sop_id,
            Enrollment.customer_id == customer_id,
            Enrollment.status != ACTIVE,
            Enrollment.rearmed.is_(False),
        )
        .values(rearmed=True)
    )


def mark_replied(session: Session, customer_id: int, at: datetime) -> int:
    """A reply counts for the customer's most recent sent touch of each SOP (F26)."""
    rows = session.execute(
        sa.select(Touch.enrollment_id, sa.func.max(Touch.sent_at))
        .where(Touch.customer_id == customer_id, Touch.sent_at.is_not(None), Touch.sent_at <= at)
        .group_by(Touch.enrollment_id)
    ).all()
    marked = 0
    for enrollment_id, sent_at in rows:
        marked += (
            session.execute(
                sa.update(Touch)
                .where(
                    Touch.enrollment_id == enrollment_id, Touch.sent_at == sent_at, Touch.replied_at.is_(None)
                )
                .values(replied_at=at)
            ).rowcount
            or 0
        )
    return marked


def mark_conversions(
    session: Session,
    customer: Customer,
    event: Mapping[str, Any],
    snapshot: Any,
    now: datetime,
    fields: Mapping[str, Any],
) -> int:
    converted = 0
    rows = session.execute(
        sa.select(Enrollment, SopVersion)
        .join(SopVersion, SopVersion.id == Enrollment.sop_version_id)
        .where(Enrollment.customer_id == customer.id, Enrollment.converted_at.is_(None))
    ).all()
    for enrollment, version in rows:
        goal = version.definition.get("goal")
        if not goal:
            continue
        window_end = enrollment.enrolled_at + timedelta(days=version.definition.get("goal_window_days", 7))
        if not enrollment.enrolled_at <= now <= window_end:
            continue
        if goal.get("event_type"):
            hit = event.get("type") == goal["event_type"]
        else:
            hit = evaluate(parse(goal["rule"], fields), snapshot, now)
        if hit:
            enrollment.converted_at = now
            converted += 1
    return converted

"""What happens to an enrolment as its customer changes: early end, normal end,
end actions and flows, replies and conversions.  The evaluate step
(``sopflow.engine.evaluate``) calls these for each event."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value
from sqlalchemy.orm.util import identity_key

from sopflow.conditions import evaluate, parse
from sopflow.config_cache import cached, frozen_copy
from sopflow.engine.customers.records import change_tags, record_change
from sopflow.engine.sops.enrolment import ACTIVE, SopRuntime, enroll, tenant_timezone
from sopflow.logging import get_logger
from sopflow.models import Customer, Enrollment, Sop, SopVersion, Touch
from sopflow.models.touch_status import CANCELLABLE, TouchStatus, check_moves

log = get_logger("sopflow.engine")
#: ending an enrolment cancels these touches; one ``sending`` is left to its worker
_CANCEL = check_moves(CANCELLABLE, TouchStatus.CANCELLED)


def runtime_of(session: Session, enrollment: Enrollment, fields: Mapping[str, Any]) -> SopRuntime:
    """The pinned version an enrolment entered with (cached per configuration
    version: the SOP's status may change, the version itself never does)."""

    def load() -> SopRuntime:
        sop = session.get(Sop, enrollment.sop_id)
        version = session.get(SopVersion, enrollment.sop_version_id)
        assert sop is not None and version is not None
        return SopRuntime(frozen_copy(sop), frozen_copy(version), fields)

    return cached(session, enrollment.tenant_id, ("runtime", enrollment.sop_version_id), load)


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
            .where(Touch.enrollment_id == enrollment.id, Touch.status.in_(CANCELLABLE))
            .values(status=_CANCEL, outcome={"reason": reason})
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
        _flow(session, enrollment, customer, flow_to, now, fields)
    session.flush()


def end_enrollments(session: Session, ids: list[int], status: str, reason: str, now: datetime) -> None:
    """``end_enrollment`` for many enrolments with no end actions and nothing open
    (plain completions): one UPDATE of those still active; objects the session
    holds see the end too."""
    ended = {"status": status, "ended_at": now, "end_reason": reason}
    session.execute(
        sa.update(Enrollment.__table__)
        .where(Enrollment.__table__.c.id.in_(ids), Enrollment.__table__.c.status == ACTIVE)
        .values(**ended)
        .execution_options(synchronize_session=False)
    )
    for enrollment_id in ids:
        held = session.identity_map.get(identity_key(Enrollment, enrollment_id))
        if held is not None:
            for key, value in ended.items():
                set_committed_value(held, key, value)


def _flow(
    session: Session,
    enrollment: Enrollment,
    customer: Customer,
    flow_to: int,
    now: datetime,
    fields: Mapping[str, Any],
) -> None:
    """An ended enrolment flows on: its customer enters SOP ``flow_to`` (when that
    is started), one causation step deeper."""
    target = session.scalar(sa.select(Sop).where(Sop.id == flow_to, Sop.tenant_id == enrollment.tenant_id))
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


def end_actions(definition: Mapping[str, Any], key: str) -> dict[str, Any]:
    """The keyword arguments of ``end_enrollment`` for the definition's end
    actions under ``key`` (``on_complete``, ``on_early_end``): tags to add, SOP to flow to."""
    end = definition.get(key) or {}
    return {"tags_add": list(end.get("tags_add") or []), "flow_to": end.get("flow_to")}


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
    """A reply counts for the customer's most recent sent touch of each SOP (the
    reply gate and the reply rates read it); returns how many touches it marked."""
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


def goal_versions(session: Session, tenant_id: int) -> frozenset[int]:
    """The ids of the tenant's SOP versions that have a goal (cached per
    configuration version: versions are immutable, a new one bumps it)."""

    def load() -> frozenset[int]:
        rows = session.execute(
            sa.select(SopVersion.id, SopVersion.definition)
            .join(Sop, Sop.id == SopVersion.sop_id)
            .where(Sop.tenant_id == tenant_id)
        )
        return frozenset(version_id for version_id, definition in rows if (definition or {}).get("goal"))

    return cached(session, tenant_id, "goal_versions", load)


def mark_conversions(
    session: Session,
    customer: Customer,
    event: Mapping[str, Any],
    snapshot: Any,
    now: datetime,
    fields: Mapping[str, Any],
) -> int:
    """Mark the customer's enrolments whose goal ``event`` meets (within the
    SOP's goal window) as converted; returns how many."""
    converted = 0
    with_goal = goal_versions(session, customer.tenant_id)
    if not with_goal:  # most tenants' SOPs have no goal: no read per event
        return 0
    rows = session.execute(
        sa.select(Enrollment, SopVersion)
        .join(SopVersion, SopVersion.id == Enrollment.sop_version_id)
        .where(
            Enrollment.customer_id == customer.id,
            Enrollment.converted_at.is_(None),
            Enrollment.sop_version_id.in_(with_goal),
        )
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

"""A SOP's enrolled customers, a page at a time, with each one's next touch:
the API's enrolment list and the console's data page read it the same way;
and a touch as the API shows it."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from sopflow.engine.sops.manage import get_sop
from sopflow.models import Enrollment, Touch
from sopflow.models.touch_status import TouchStatus
from sopflow.pagination import page


def enrollment_to_dict(e: Enrollment, next_touch: datetime | None = None) -> dict[str, Any]:
    """An enrolment as the API shows it, with its next scheduled touch."""
    return {
        "id": e.id,
        "sop_id": e.sop_id,
        "customer_id": e.customer_id,
        "status": e.status,
        "version_id": e.sop_version_id,
        "entry_seq": e.entry_seq,
        "timezone": e.timezone,
        "enrolled_at": e.enrolled_at.isoformat(),
        "ended_at": e.ended_at.isoformat() if e.ended_at else None,
        "end_reason": e.end_reason,
        "flowed_from_id": e.flowed_from_id,
        "converted_at": e.converted_at.isoformat() if e.converted_at else None,
        "arm": e.arm,
        "next_touch_at": next_touch.isoformat() if next_touch else None,
    }


def enrollment_page(
    session: Session,
    tenant_id: int,
    sop_id: int,
    cursor: str | None = None,
    limit: int = 100,
    status: str | None = None,
) -> dict[str, Any]:
    """``{"items": [...], "next_cursor"}``, oldest enrolment first; ``NotFound`` for another tenant's SOP."""
    get_sop(session, tenant_id, sop_id)
    query = sa.select(Enrollment).where(Enrollment.sop_id == sop_id, Enrollment.tenant_id == tenant_id)
    if status is not None:
        query = query.where(Enrollment.status == status)
    rows, next_cursor = page(session, query, Enrollment.id, cursor, limit)
    nxt = dict(
        session.execute(
            sa.select(Touch.enrollment_id, sa.func.min(Touch.due_at))
            .where(Touch.enrollment_id.in_([e.id for e in rows]), Touch.status == TouchStatus.SCHEDULED)
            .group_by(Touch.enrollment_id)
        ).all()
    )
    return {"items": [enrollment_to_dict(e, nxt.get(e.id)) for e in rows], "next_cursor": next_cursor}


def touch_to_dict(t: Touch) -> dict[str, Any]:
    """A touch as the API shows it."""
    return {
        "id": t.id,
        "sop_id": t.sop_id,
        "enrollment_id": t.enrollment_id,
        "customer_id": t.customer_id,
        "step_index": t.step_index,
        "status": t.status,
        "planned_at": t.planned_at.isoformat(),
        "due_at": t.due_at.isoformat(),
        "deferrals": t.deferrals,
        "defer_reason": t.defer_reason,
        "attempts": t.attempts,
        "sent_at": t.sent_at.isoformat() if t.sent_at else None,
        "replied_at": t.replied_at.isoformat() if t.replied_at else None,
        "outcome": {k: v for k, v in t.outcome.items() if k != "idempotent"},
    }

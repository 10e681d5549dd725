"""One customer at a glance, for a page a plugin serves beside a chat (the WeCom
sidebar): the stage in each pipeline, the SOPs running for them and the touches
due for them today (the tenant's day), read in one transaction."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.orm import Session

from sopflow.models import Enrollment, Sop, Stage, Tenant, Touch
from sopflow.models.pipelines import CustomerStage, Pipeline
from sopflow.models.touch_status import OPEN, TouchStatus

#: touches still to be sent or waiting for staff to confirm them
DUE = (*OPEN, TouchStatus.PENDING)


def end_of_day(session: Session, tenant_id: int, now: datetime) -> datetime:
    """The end of the tenant's local day that contains ``now``."""
    zone = ZoneInfo(session.get(Tenant, tenant_id).timezone or "UTC")
    local = now.astimezone(zone)
    return (local.replace(hour=0, minute=0, second=0, microsecond=0) + timedelta(days=1)).astimezone(
        now.tzinfo
    )


def customer_overview(session: Session, tenant_id: int, customer_id: int, now: datetime) -> dict[str, Any]:
    """``stages`` (pipeline → stage), ``sops`` (the active enrolments) and ``touches``
    (open or awaiting staff, due before the end of the tenant's day, overdue included)."""
    stages = {
        pipeline: stage
        for pipeline, stage in session.execute(
            sa.select(Pipeline.name, Stage.name)
            .join(CustomerStage, CustomerStage.pipeline_id == Pipeline.id)
            .join(Stage, Stage.id == CustomerStage.stage_id)
            .where(CustomerStage.tenant_id == tenant_id, CustomerStage.customer_id == customer_id)
            .order_by(Pipeline.name)
        )
    }
    sops = [
        {"enrollment_id": e_id, "sop_id": sop_id, "sop": name, "enrolled_at": at.isoformat()}
        for e_id, sop_id, name, at in session.execute(
            sa.select(Enrollment.id, Sop.id, Sop.name, Enrollment.enrolled_at)
            .join(Sop, Sop.id == Enrollment.sop_id)
            .where(
                Enrollment.tenant_id == tenant_id,
                Enrollment.customer_id == customer_id,
                Enrollment.status == "active",
            )
            .order_by(Enrollment.id)
        )
    ]
    names = {s["enrollment_id"]: s["sop"] for s in sops}
    touches = [
        {
            "id": t.id,
            "sop": names.get(t.enrollment_id, ""),
            "step_index": t.step_index,
            "status": t.status,
            "due_at": t.due_at.isoformat(),
        }
        for t in session.scalars(
            sa.select(Touch)
            .where(
                Touch.tenant_id == tenant_id,
                Touch.customer_id == customer_id,
                Touch.status.in_([str(s) for s in DUE]),
                Touch.due_at < end_of_day(session, tenant_id, now),
            )
            .order_by(Touch.due_at, Touch.id)
        )
    ]
    return {"stages": stages, "sops": sops, "touches": touches}

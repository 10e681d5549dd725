"""Saved segments as the API lists them, and a rule's preview with its sample customers."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from sopflow.engine.customers.fields import FieldDef
from sopflow.engine.customers.records import customer_to_dict
from sopflow.engine.customers.segments import get_segment, preview, segment_to_dict
from sopflow.models import Customer, Segment


def list_segments(session: Session, tenant_id: int) -> list[dict[str, Any]]:
    """The tenant's saved segments, oldest first."""
    rows = session.scalars(sa.select(Segment).where(Segment.tenant_id == tenant_id).order_by(Segment.id))
    return [segment_to_dict(x) for x in rows]


def preview_page(
    session: Session,
    tenant_id: int,
    rule: Any,
    fields: dict[str, FieldDef],
    now: datetime,
    limit: int,
    after_id: int | None,
) -> dict[str, Any]:
    """A rule's audience count and one page of it, each customer in full."""
    result = preview(session, tenant_id, rule, fields, now, limit, after_id)
    rows = session.scalars(
        sa.select(Customer).where(Customer.id.in_(result["customer_ids"])).order_by(Customer.id)
    )
    return {
        "count": result["count"],
        "sample": [customer_to_dict(session, c) for c in rows],
        "next_after_id": result["next_after_id"],
    }


def delete_segment(session: Session, tenant_id: int, segment_id: int) -> None:
    """Delete the tenant's segment ``segment_id`` (404 when it has none)."""
    session.delete(get_segment(session, tenant_id, segment_id))

"""Staff members as the API lists, adds and changes them."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from sopflow.engine.customers.transfers import mark_left
from sopflow.errors import Conflict, InvalidInput, NotFound
from sopflow.models import Staff


def staff_to_dict(m: Staff) -> dict[str, Any]:
    """A staff member as the API shows them."""
    return {
        "id": m.id,
        "external_id": m.external_id,
        "name": m.name,
        "created_at": m.created_at.isoformat(),
        "left_at": m.left_at.isoformat() if m.left_at else None,
    }


def list_staff(session: Session, tenant_id: int) -> list[dict[str, Any]]:
    """The tenant's staff members, first added first."""
    rows = session.scalars(sa.select(Staff).where(Staff.tenant_id == tenant_id).order_by(Staff.id))
    return [staff_to_dict(m) for m in rows]


def get_staff(session: Session, tenant_id: int, staff_id: int) -> Staff:
    """The tenant's staff member ``staff_id``, else ``NotFound``."""
    m = session.scalar(sa.select(Staff).where(Staff.id == staff_id, Staff.tenant_id == tenant_id))
    if m is None:
        raise NotFound("staff member", staff_id)
    return m


def add_staff(session: Session, tenant_id: int, external_id: str, name: str, now: datetime) -> dict[str, Any]:
    """Add a staff member by their channel user id (``Conflict`` when it is taken)."""
    if not external_id.strip() or len(external_id) > 128:
        raise InvalidInput([("external_id", "the staff member's channel user id, 1–128 characters")])
    if session.scalar(
        sa.select(Staff.id).where(Staff.tenant_id == tenant_id, Staff.external_id == external_id)
    ):
        raise Conflict(f"staff member {external_id!r} already exists")
    m = Staff(
        tenant_id=tenant_id,
        external_id=external_id,
        name=name or external_id[:100],  # an id may be longer than a name
        created_at=now,
    )
    session.add(m)
    session.flush()
    return staff_to_dict(m)


def update_staff(
    session: Session, tenant_id: int, staff_id: int, name: str | None, left: bool | None, now: datetime
) -> dict[str, Any]:
    """Rename a staff member, or mark them as left or back (None: unchanged)."""
    m = get_staff(session, tenant_id, staff_id)
    if name is not None:
        m.name = name
    if left is not None:
        mark_left(session, m, left, now)
    return staff_to_dict(m)

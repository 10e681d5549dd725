"""SOPs, their versions and touches as the API lists and shows them, and the
start of an SOP as the API answers it (its audience handed on after the commit)."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from sopflow.conditions.storage import parse_instant
from sopflow.engine.context import EngineContext
from sopflow.engine.sops.definition import HIDDEN_KIND
from sopflow.engine.sops.listing import touch_to_dict
from sopflow.engine.sops.manage import current_definition, get_sop, sop_to_dict, start_sop
from sopflow.errors import Conflict, InvalidInput
from sopflow.models import Sop, SopVersion, Touch
from sopflow.pagination import page


def user_sop(session: Session, sop: Sop) -> Sop:
    """``sop``, unless it is a journey's reminder SOP (edited through its journey)."""
    if sop.kind == HIDDEN_KIND:
        journey = (current_definition(session, sop).get("journey") or {}).get("journey_id")
        raise Conflict(f"this SOP sends a journey's stage reminders; edit PATCH /api/v1/journeys/{journey}")
    return sop


def list_sops(session: Session, tenant_id: int) -> list[dict[str, Any]]:
    """The tenant's SOPs, oldest first (journeys' reminder SOPs too)."""
    rows = session.scalars(sa.select(Sop).where(Sop.tenant_id == tenant_id).order_by(Sop.id))
    return [sop_to_dict(session, x) for x in rows]


def sop_versions(session: Session, tenant_id: int, sop_id: int) -> list[dict[str, Any]]:
    """Every version of the tenant's SOP ``sop_id``, first first."""
    get_sop(session, tenant_id, sop_id)
    rows = session.scalars(
        sa.select(SopVersion).where(SopVersion.sop_id == sop_id).order_by(SopVersion.version)
    )
    return [
        {"version": v.version, "id": v.id, "definition": v.definition, "created_at": v.created_at.isoformat()}
        for v in rows
    ]


def start_and_show(ctx: EngineContext, tenant_id: int, sop_id: int) -> dict[str, Any]:
    """Start the SOP; a nurture SOP's audience is computed after the commit (in the
    background, or inline without a broker); the SOP as it is then."""
    with ctx.tx() as s:
        sop = start_sop(s, user_sop(s, get_sop(s, tenant_id, sop_id, lock=True)), ctx.now())
        kind = sop.kind
    if kind == "nurture":
        # an optimisation when it goes to a worker: the scheduler advances every pending audience anyway
        ctx.enqueue_after_commit("audience", tenant_id, sop_id)
    with ctx.read() as s:
        return sop_to_dict(s, get_sop(s, tenant_id, sop_id))


def list_touches(
    session: Session,
    tenant_id: int,
    equal: dict[str, Any],
    due_after: str | None,
    due_before: str | None,
    cursor: str | None,
    limit: int,
) -> dict[str, Any]:
    """One page of the tenant's touches: ``equal`` maps ``status``, ``customer_id``
    and ``sop_id`` to a value (None: any); the due window's instants are checked."""
    query = sa.select(Touch).where(Touch.tenant_id == tenant_id)
    for name, value in equal.items():
        if value is not None:
            query = query.where(getattr(Touch, name) == value)
    for name, value in (("due_after", due_after), ("due_before", due_before)):
        if value is not None:
            try:
                when = parse_instant(value)
            except ValueError as exc:
                raise InvalidInput([(name, str(exc))]) from None
            query = query.where(Touch.due_at >= when if name == "due_after" else Touch.due_at < when)
    rows, next_cursor = page(session, query, Touch.id, cursor, limit)
    return {"items": [touch_to_dict(t) for t in rows], "next_cursor": next_cursor}

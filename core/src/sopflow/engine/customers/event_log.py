"""The event log as the API pages through it, and the events a batch created."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from sopflow.engine.customers.ingest import event_to_dict
from sopflow.models import Event
from sopflow.pagination import page


def list_events(
    session: Session,
    tenant_id: int,
    type: str | None,
    customer_id: int | None,
    cursor: str | None,
    limit: int,
) -> dict[str, Any]:
    """One page of the tenant's events, oldest first: ``{"items", "next_cursor"}``."""
    query = sa.select(Event).where(Event.tenant_id == tenant_id)
    if type is not None:
        query = query.where(Event.type == type)
    if customer_id is not None:
        query = query.where(Event.customer_id == customer_id)
    rows, next_cursor = page(session, query, Event.id, cursor, limit)
    return {"items": [event_to_dict(e) for e in rows], "next_cursor": next_cursor}


def created_events(session: Session, outcomes: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The events an ingest batch created (its duplicates left out), to announce."""
    ids = [o["event_id"] for o in outcomes if o["status"] == "created"]
    return [event_to_dict(e) for e in session.scalars(sa.select(Event).where(Event.id.in_(ids)))]

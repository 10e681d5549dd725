"""A change made to a customer by a person or an integration (the API, the
console), recorded in the event log as ingest would, so automation (SOP
entry, early end, journeys) reacts to it and the timeline shows who made it."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from sopflow.engine.customers.fields import field_definitions
from sopflow.engine.customers.ingest import event_to_dict
from sopflow.engine.customers.records import (
    TagChange,
    customer_to_dict,
    get_customer,
    tags_of,
    update_customer,
)
from sopflow.models import Customer, Event


def record_change_event(
    session: Session,
    customer: Customer,
    type_: str,
    body: dict[str, Any],
    now: datetime,
    tags: TagChange | None = None,
    *,
    source: str = "api",
    actor: str | None = None,
) -> dict[str, Any]:
    """Store the change's event (``changed`` keys, tags added and removed, and
    ``actor``: who made it — the audit trail) and return it for announcing."""
    event = Event(
        tenant_id=customer.tenant_id,
        customer_id=customer.id,
        type=type_,
        idempotency_key=f"{source}:{uuid.uuid4().hex}",
        occurred_at=now,
        received_at=now,
        source=source,
        payload={
            "changed": sorted(k for k in body if k != "identities"),
            **({"tags_added": list(tags.added), "tags_removed": list(tags.removed)} if tags else {}),
            **({"actor": actor} if actor else {}),
        },
    )
    session.add(event)
    session.flush()
    return event_to_dict(event)


def edit_customer(
    session: Session,
    plugins: Any,
    tenant_id: int,
    customer_id: int,
    body: dict[str, Any],
    now: datetime,
    *,
    source: str = "api",
    actor: str | None = None,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Apply ``body`` (fields, tags, identities, ...) validated against the
    tenant's definitions (``InvalidInput`` naming each bad field, nothing
    changed); returns the customer as the API shows it and the change's event."""
    defs = field_definitions(session, tenant_id, plugins)
    customer = get_customer(session, tenant_id, customer_id, lock=True)
    before = set(tags_of(session, customer.id))
    update_customer(session, customer, body, defs, now)
    after = set(tags_of(session, customer.id))
    tags = TagChange(tuple(sorted(after - before)), tuple(sorted(before - after)))
    event = record_change_event(
        session, customer, "customer.updated", body, now, tags, source=source, actor=actor
    )
    return customer_to_dict(session, customer), event

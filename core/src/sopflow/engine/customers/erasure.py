"""Erasing a customer (the API's ``DELETE /customers/{id}``): identities,
relations, tags and stages go; its events are kept, anonymised; customers
merged into it become standalone again."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.orm import Session

from sopflow.engine.customers.records import get_customer
from sopflow.models import (
    ChannelIdentity,
    Customer,
    CustomerRelation,
    CustomerStage,
    CustomerTag,
    Event,
    StageHistory,
)


def erase_customer(session: Session, tenant_id: int, customer_id: int) -> None:
    """Erase the tenant's customer ``customer_id`` (404 when it has none)."""
    c = get_customer(session, tenant_id, customer_id, lock=True)
    for model in (ChannelIdentity, CustomerRelation, CustomerTag, CustomerStage, StageHistory):
        session.execute(sa.delete(model).where(model.customer_id == c.id))
    session.execute(sa.update(Event).where(Event.customer_id == c.id).values(customer_id=None, payload={}))
    session.execute(sa.update(Customer).where(Customer.merged_into_id == c.id).values(merged_into_id=None))
    session.delete(c)

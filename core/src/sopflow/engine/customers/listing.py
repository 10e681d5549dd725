"""The customers list (the API's ``GET /customers``): filters and a cursor, as a read model."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from sopflow.engine.customers.records import customer_to_dict
from sopflow.models import ChannelIdentity, Customer, CustomerStage, CustomerTag
from sopflow.pagination import page


@dataclass(frozen=True)
class CustomerFilter:
    """What a list of customers is narrowed by (None: not narrowed)."""

    tag: str | None = None
    stage_id: int | None = None
    source: str | None = None
    churned: bool | None = None
    channel: str | None = None
    external_id: str | None = None
    q: str | None = None


def _query(tenant_id: int, f: CustomerFilter) -> sa.Select[Any]:
    query = sa.select(Customer).where(Customer.tenant_id == tenant_id, Customer.merged_into_id.is_(None))
    if f.tag is not None:
        query = query.where(
            sa.exists().where(CustomerTag.customer_id == Customer.id, CustomerTag.tag == f.tag)
        )
    if f.stage_id is not None:
        query = query.where(
            sa.exists().where(CustomerStage.customer_id == Customer.id, CustomerStage.stage_id == f.stage_id)
        )
    if f.source is not None:
        query = query.where(Customer.source == f.source)
    if f.churned is not None:
        query = query.where(Customer.churned_at.is_not(None) if f.churned else Customer.churned_at.is_(None))
    if f.external_id is not None:
        cond = [ChannelIdentity.customer_id == Customer.id, ChannelIdentity.external_id == f.external_id]
        if f.channel is not None:
            cond.append(ChannelIdentity.channel == f.channel)
        query = query.where(sa.exists().where(*cond))
    if f.q:
        query = query.where(Customer.display_name.contains(f.q, autoescape=True))
    return query


def list_customers(
    session: Session, tenant_id: int, f: CustomerFilter, cursor: str | None, limit: int
) -> dict[str, Any]:
    """One page of the tenant's live (unmerged) customers: ``{"items", "next_cursor"}``."""
    rows, next_cursor = page(session, _query(tenant_id, f), Customer.id, cursor, limit)
    return {"items": [customer_to_dict(session, c) for c in rows], "next_cursor": next_cursor}

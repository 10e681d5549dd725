"""The append-only event log.  The idempotency key is unique per tenant, so a
repeated delivery (a webhook retry, a replayed callback) is a no-op."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from sopflow.models.types import JSONType, UTCDateTime


class Event(SQLModel, table=True):
    __tablename__ = "events"
    __table_args__ = (
        sa.UniqueConstraint("tenant_id", "idempotency_key"),
        sa.Index("ix_events_customer_type_time", "customer_id", "type", "occurred_at"),
        # the evaluation sweep reads only the few events still waiting to be evaluated
        sa.Index(
            "ix_events_unevaluated",
            "received_at",
            postgresql_where=sa.text("evaluated_at IS NULL"),
            sqlite_where=sa.text("evaluated_at IS NULL"),
        ),
    )
    id: int | None = Field(default=None, primary_key=True)
    tenant_id: int = Field(foreign_key="tenants.id")
    customer_id: int | None = Field(default=None, foreign_key="customers.id")
    type: str = Field(max_length=100)
    idempotency_key: str = Field(max_length=200)
    occurred_at: datetime = Field(sa_column=sa.Column(UTCDateTime, nullable=False))
    received_at: datetime = Field(sa_column=sa.Column(UTCDateTime, nullable=False))
    payload: dict[str, Any] = Field(default_factory=dict, sa_column=sa.Column(JSONType, nullable=False))
    source: str = Field(default="api", max_length=100)
    causation_id: int | None = Field(default=None)
    depth: int = 0
    #: NULL until the evaluate step ran for this event: set in the same transaction
    #: as the event's effects, so the stored event *is* the record of work to do
    #: (no dual write with the broker) and a re-sent evaluate message is a no-op.
    evaluated_at: datetime | None = Field(default=None, sa_column=sa.Column(UTCDateTime))

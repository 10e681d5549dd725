"""Staff, field definitions, customers, their tags and channel identities.

Field values live in one JSON column per customer: typed by the definitions,
validated on write, and compiled to ``json_extract`` / ``->>`` by the rule
compiler.  Tags get their own table because tag rules are set membership tests
that an index on (tenant, tag) answers without scanning customers.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from sopflow.models.types import JSONType, UTCDateTime


class Staff(SQLModel, table=True):
    __tablename__ = "staff"
    __table_args__ = (sa.UniqueConstraint("tenant_id", "external_id"),)
    id: int | None = Field(default=None, primary_key=True)
    tenant_id: int = Field(foreign_key="tenants.id", index=True)
    external_id: str = Field(max_length=128)
    name: str = Field(default="", max_length=100)
    created_at: datetime = Field(sa_column=sa.Column(UTCDateTime, nullable=False))
    #: when the member left the company (API or the channel's contact callbacks): their
    #: customers' touches are held until the customers are handed to someone else
    left_at: datetime | None = Field(default=None, sa_column=sa.Column(UTCDateTime, nullable=True))


class FieldDefinition(SQLModel, table=True):
    __tablename__ = "field_definitions"
    __table_args__ = (sa.UniqueConstraint("tenant_id", "key"),)
    id: int | None = Field(default=None, primary_key=True)
    tenant_id: int = Field(foreign_key="tenants.id", index=True)
    key: str = Field(max_length=100)
    label: str = Field(default="", max_length=200)
    type: str = Field(max_length=20)
    choices: list[str] = Field(default_factory=list, sa_column=sa.Column(JSONType, nullable=False))
    description: str = Field(default="", max_length=1000)
    created_at: datetime = Field(sa_column=sa.Column(UTCDateTime, nullable=False))


class Customer(SQLModel, table=True):
    __tablename__ = "customers"
    __table_args__ = (sa.Index("ix_customers_tenant_id_id", "tenant_id", "id"),)
    id: int | None = Field(default=None, primary_key=True)
    tenant_id: int = Field(foreign_key="tenants.id")
    display_name: str = Field(default="", max_length=200)
    fields: dict[str, Any] = Field(default_factory=dict, sa_column=sa.Column(JSONType, nullable=False))
    timezone: str | None = Field(default=None, max_length=64)
    source: str | None = Field(default=None, max_length=100)
    owner_staff_id: int | None = Field(default=None, foreign_key="staff.id")
    churned_at: datetime | None = Field(default=None, sa_column=sa.Column(UTCDateTime))
    merged_into_id: int | None = Field(default=None, foreign_key="customers.id")
    created_at: datetime = Field(sa_column=sa.Column(UTCDateTime, nullable=False))
    updated_at: datetime = Field(sa_column=sa.Column(UTCDateTime, nullable=False))


class CustomerTag(SQLModel, table=True):
    __tablename__ = "customer_tags"
    __table_args__ = (sa.Index("ix_customer_tags_tenant_tag", "tenant_id", "tag", "customer_id"),)
    customer_id: int = Field(foreign_key="customers.id", primary_key=True)
    tag: str = Field(primary_key=True, max_length=100)
    tenant_id: int = Field(foreign_key="tenants.id")


class ChannelIdentity(SQLModel, table=True):
    """One way a channel knows a customer: several identities, one customer."""

    __tablename__ = "channel_identities"
    __table_args__ = (sa.UniqueConstraint("tenant_id", "channel", "external_id"),)
    id: int | None = Field(default=None, primary_key=True)
    tenant_id: int = Field(foreign_key="tenants.id")
    customer_id: int = Field(foreign_key="customers.id", index=True)
    channel: str = Field(max_length=50)
    external_id: str = Field(max_length=200)
    staff_id: int | None = Field(default=None, foreign_key="staff.id")
    created_at: datetime = Field(sa_column=sa.Column(UTCDateTime, nullable=False))


class CustomerRelation(SQLModel, table=True):
    """One staff member following a customer on one channel (WeCom's
    ``follow_user``, a friend in a personal account): when and how they were
    added and the staff member's remark.  A customer followed by several staff
    members has one row each; ``ended_at`` is set when that relation ends (the
    customer deleted the member, or the member the customer) and the others stay."""

    __tablename__ = "customer_relations"
    __table_args__ = (sa.UniqueConstraint("customer_id", "staff_id", "channel"),)
    id: int | None = Field(default=None, primary_key=True)
    tenant_id: int = Field(foreign_key="tenants.id")
    customer_id: int = Field(foreign_key="customers.id", index=True)
    staff_id: int = Field(foreign_key="staff.id")
    channel: str = Field(max_length=50)
    added_at: datetime = Field(sa_column=sa.Column(UTCDateTime, nullable=False))
    source: str | None = Field(default=None, max_length=100)
    remark: str | None = Field(default=None, max_length=200)
    ended_at: datetime | None = Field(default=None, sa_column=sa.Column(UTCDateTime))
    end_reason: str | None = Field(default=None, max_length=100)

"""Pipelines of ordered stages, each customer's current stage per pipeline, and
the stage history (entered_at, left_at, cause)."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from sopflow.models.types import UTCDateTime


class Pipeline(SQLModel, table=True):
    __tablename__ = "pipelines"
    __table_args__ = (sa.UniqueConstraint("tenant_id", "name"),)
    id: int | None = Field(default=None, primary_key=True)
    tenant_id: int = Field(foreign_key="tenants.id", index=True)
    name: str = Field(max_length=100)
    created_at: datetime = Field(sa_column=sa.Column(UTCDateTime, nullable=False))


class Stage(SQLModel, table=True):
    __tablename__ = "stages"
    __table_args__ = (sa.UniqueConstraint("pipeline_id", "name"),)
    id: int | None = Field(default=None, primary_key=True)
    tenant_id: int = Field(foreign_key="tenants.id", index=True)
    pipeline_id: int = Field(foreign_key="pipelines.id", index=True)
    name: str = Field(max_length=100)
    position: int = 0


class CustomerStage(SQLModel, table=True):
    """Where a customer stands now in one pipeline."""

    __tablename__ = "customer_stages"
    __table_args__ = (sa.Index("ix_customer_stages_stage", "tenant_id", "stage_id", "customer_id"),)
    customer_id: int = Field(foreign_key="customers.id", primary_key=True)
    pipeline_id: int = Field(foreign_key="pipelines.id", primary_key=True)
    tenant_id: int = Field(foreign_key="tenants.id")
    stage_id: int = Field(foreign_key="stages.id")
    entered_at: datetime = Field(sa_column=sa.Column(UTCDateTime, nullable=False))


class StageHistory(SQLModel, table=True):
    __tablename__ = "stage_history"
    __table_args__ = (sa.Index("ix_stage_history_stage", "pipeline_id", "stage_id", "entered_at"),)
    id: int | None = Field(default=None, primary_key=True)
    tenant_id: int = Field(foreign_key="tenants.id")
    customer_id: int = Field(foreign_key="customers.id", index=True)
    pipeline_id: int = Field(foreign_key="pipelines.id")
    stage_id: int = Field(foreign_key="stages.id")
    entered_at: datetime = Field(sa_column=sa.Column(UTCDateTime, nullable=False))
    left_at: datetime | None = Field(default=None, sa_column=sa.Column(UTCDateTime))
    cause: str = Field(max_length=20)

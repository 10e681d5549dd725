"""Journeys: a pipeline whose stages have entry rules, an automation
switch, stage reminders and an entry SOP, and the scratch table a sync uses."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from sopflow.models.types import JSONType, UTCDateTime


class Journey(SQLModel, table=True):
    __tablename__ = "journeys"
    id: int | None = Field(default=None, primary_key=True)
    tenant_id: int = Field(foreign_key="tenants.id", index=True)
    pipeline_id: int = Field(foreign_key="pipelines.id", unique=True)
    status: str = Field(default="draft", max_length=20)  # draft | active | stopped
    automation: bool = True
    allow_backward: bool = False
    stage_reminders: bool = True
    follow_up_reminders: bool = True
    reminder_channel: str | None = Field(default=None, max_length=100)
    #: sync progress and lock: {state, run, total, done, placed, after, started_at, heartbeat_at, ...}
    sync: dict[str, Any] = Field(default_factory=dict, sa_column=sa.Column(JSONType, nullable=False))
    created_at: datetime = Field(sa_column=sa.Column(UTCDateTime, nullable=False))
    updated_at: datetime = Field(sa_column=sa.Column(UTCDateTime, nullable=False))


class JourneyStage(SQLModel, table=True):
    """A stage's journey settings; the stage itself lives in ``stages``."""

    __tablename__ = "journey_stages"
    stage_id: int = Field(foreign_key="stages.id", primary_key=True)
    journey_id: int = Field(foreign_key="journeys.id", index=True)
    tenant_id: int = Field(foreign_key="tenants.id")
    #: the entry rules as the user wrote them: [{"conditions": [...]}, ...]
    rules: list[Any] = Field(default_factory=list, sa_column=sa.Column(JSONType, nullable=False))
    entry_sop_id: int | None = Field(default=None, foreign_key="sops.id")
    #: [{"day": 1, "at": "09:00", "text": "...", "attachments": [...]}, ...]
    reminders: list[Any] = Field(default_factory=list, sa_column=sa.Column(JSONType, nullable=False))
    #: the hidden SOP that delivers this stage's reminders (kind "journey_stage")
    reminder_sop_id: int | None = Field(default=None, foreign_key="sops.id")


class JourneySyncTarget(SQLModel, table=True):
    """Where a running sync will place each customer of the current batch."""

    __tablename__ = "journey_sync_targets"
    journey_id: int = Field(foreign_key="journeys.id", primary_key=True)
    customer_id: int = Field(foreign_key="customers.id", primary_key=True)
    stage_id: int = Field(foreign_key="stages.id")
    position: int

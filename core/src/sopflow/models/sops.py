"""SOPs, their immutable versions, enrolments and touches, plus the two
ledgers that make caps exact under concurrency.

The schedule lives here: a touch row is unique per (enrolment, step) and moves
scheduled → claimed → (sending →) sent / pending / failed / skipped / cancelled
/ review, along the moves ``sopflow.models.touch_status.TRANSITIONS`` allows.
Dramatiq only ever carries work that is already due.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from sopflow.models.touch_status import TouchStatus
from sopflow.models.types import JSONType, UTCDateTime


class Sop(SQLModel, table=True):
    __tablename__ = "sops"
    id: int | None = Field(default=None, primary_key=True)
    tenant_id: int = Field(foreign_key="tenants.id", index=True)
    name: str = Field(max_length=200)
    kind: str = Field(max_length=20)
    status: str = Field(default="draft", max_length=20)
    current_version: int = 1
    audience: dict[str, Any] = Field(default_factory=dict, sa_column=sa.Column(JSONType, nullable=False))
    created_at: datetime = Field(sa_column=sa.Column(UTCDateTime, nullable=False))
    updated_at: datetime = Field(sa_column=sa.Column(UTCDateTime, nullable=False))
    started_at: datetime | None = Field(default=None, sa_column=sa.Column(UTCDateTime))
    stopped_at: datetime | None = Field(default=None, sa_column=sa.Column(UTCDateTime))


class SopVersion(SQLModel, table=True):
    __tablename__ = "sop_versions"
    __table_args__ = (sa.UniqueConstraint("sop_id", "version"),)
    id: int | None = Field(default=None, primary_key=True)
    tenant_id: int = Field(foreign_key="tenants.id")
    sop_id: int = Field(foreign_key="sops.id", index=True)
    version: int
    definition: dict[str, Any] = Field(sa_column=sa.Column(JSONType, nullable=False))
    created_at: datetime = Field(sa_column=sa.Column(UTCDateTime, nullable=False))


class Enrollment(SQLModel, table=True):
    """One customer's run through one SOP version.  ``entry_seq`` is 0 for the
    first entry; the unique key makes "exactly once unless re-entry" a database
    fact instead of a check that races."""

    __tablename__ = "enrollments"
    __table_args__ = (
        sa.UniqueConstraint("sop_id", "customer_id", "entry_seq"),
        sa.Index("ix_enrollments_customer_status", "customer_id", "status"),
        sa.Index("ix_enrollments_sop_status", "sop_id", "status"),
    )
    id: int | None = Field(default=None, primary_key=True)
    tenant_id: int = Field(foreign_key="tenants.id")
    sop_id: int = Field(foreign_key="sops.id")
    sop_version_id: int = Field(foreign_key="sop_versions.id")
    customer_id: int = Field(foreign_key="customers.id")
    entry_seq: int = 0
    status: str = Field(default="active", max_length=20)
    timezone: str = Field(max_length=64)
    enrolled_at: datetime = Field(sa_column=sa.Column(UTCDateTime, nullable=False))
    ended_at: datetime | None = Field(default=None, sa_column=sa.Column(UTCDateTime))
    end_reason: str | None = Field(default=None, max_length=50)
    flowed_from_id: int | None = Field(default=None)
    depth: int = 0
    #: re-entry is edge-triggered: set once the target rule was seen false after this enrolment ended
    rearmed: bool = False
    converted_at: datetime | None = Field(default=None, sa_column=sa.Column(UTCDateTime))
    #: the random split's arm the customer was assigned (``engine.sops.arms``); None without a split
    arm: str | None = Field(default=None, max_length=40)


class Touch(SQLModel, table=True):
    __tablename__ = "touches"
    __table_args__ = (
        sa.UniqueConstraint("enrollment_id", "step_index"),
        sa.Index("ix_touches_status_due", "status", "due_at"),
        sa.Index("ix_touches_sop_step", "sop_id", "step_index", "status"),
    )
    id: int | None = Field(default=None, primary_key=True)
    tenant_id: int = Field(foreign_key="tenants.id")
    sop_id: int = Field(foreign_key="sops.id")
    enrollment_id: int = Field(foreign_key="enrollments.id")
    customer_id: int = Field(foreign_key="customers.id", index=True)
    step_index: int
    status: str = Field(default=TouchStatus.SCHEDULED, max_length=20)  # a ``TouchStatus``
    planned_at: datetime = Field(sa_column=sa.Column(UTCDateTime, nullable=False))
    due_at: datetime = Field(sa_column=sa.Column(UTCDateTime, nullable=False))
    lease_until: datetime | None = Field(default=None, sa_column=sa.Column(UTCDateTime))
    #: when a worker took the claim (prepared it); NULL while the hand-off is in the
    #: broker, so claims whose message the broker lost can be told apart and released
    started_at: datetime | None = Field(default=None, sa_column=sa.Column(UTCDateTime))
    attempts: int = 0
    deferrals: int = 0
    defer_reason: str | None = Field(default=None, max_length=50)
    sent_at: datetime | None = Field(default=None, sa_column=sa.Column(UTCDateTime))
    replied_at: datetime | None = Field(default=None, sa_column=sa.Column(UTCDateTime))
    outcome: dict[str, Any] = Field(default_factory=dict, sa_column=sa.Column(JSONType, nullable=False))


class SendQuota(SQLModel, table=True):
    """Enterprise pushes a customer received on one local day (the daily cap)."""

    __tablename__ = "send_quotas"
    customer_id: int = Field(foreign_key="customers.id", primary_key=True)
    day: date = Field(primary_key=True)
    tenant_id: int = Field(foreign_key="tenants.id")
    used: int = 0


class BatchWindow(SQLModel, table=True):
    """Touches an SOP released in one batch window (batch sending)."""

    __tablename__ = "batch_windows"
    sop_id: int = Field(foreign_key="sops.id", primary_key=True)
    window_start: datetime = Field(sa_column=sa.Column(UTCDateTime, primary_key=True))
    used: int = 0

"""Small facts the runtime keeps across processes (e.g. which broker instance
the scheduler last saw), one row per key."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from sopflow.models.types import JSONType, UTCDateTime


class RuntimeState(SQLModel, table=True):
    __tablename__ = "runtime_state"
    key: str = Field(primary_key=True, max_length=100)
    value: str = Field(max_length=200)
    updated_at: datetime = Field(sa_column=sa.Column(UTCDateTime, nullable=False))


class PendingJob(SQLModel, table=True):
    """A plugin job queued and not yet run: the durable record behind its broker
    message.  ``handed_off`` is false while the message could not be sent; the
    scheduler's sweep re-sends those, and every pending job after the broker
    restarted (its queue may be gone).  The row is deleted when the job ran."""

    __tablename__ = "pending_jobs"
    __table_args__ = (sa.Index("ix_pending_jobs_created", "created_at"),)
    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=200)
    kwargs: dict = Field(default_factory=dict, sa_column=sa.Column(JSONType, nullable=False))
    handed_off: bool = Field(default=False)
    created_at: datetime = Field(sa_column=sa.Column(UTCDateTime, nullable=False))

"""Small facts the runtime keeps across processes (e.g. which broker instance
the scheduler last saw), one row per key."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from sopflow.models.types import UTCDateTime


class RuntimeState(SQLModel, table=True):
    __tablename__ = "runtime_state"
    key: str = Field(primary_key=True, max_length=100)
    value: str = Field(max_length=200)
    updated_at: datetime = Field(sa_column=sa.Column(UTCDateTime, nullable=False))

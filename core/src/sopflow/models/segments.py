"""Saved segments ("crowd packs"): a named rule."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from sopflow.models.types import JSONType, UTCDateTime


class Segment(SQLModel, table=True):
    __tablename__ = "segments"
    __table_args__ = (sa.UniqueConstraint("tenant_id", "name"),)
    id: int | None = Field(default=None, primary_key=True)
    tenant_id: int = Field(foreign_key="tenants.id", index=True)
    name: str = Field(max_length=200)
    rule: dict[str, Any] = Field(sa_column=sa.Column(JSONType, nullable=False))
    created_at: datetime = Field(sa_column=sa.Column(UTCDateTime, nullable=False))
    updated_at: datetime = Field(sa_column=sa.Column(UTCDateTime, nullable=False))

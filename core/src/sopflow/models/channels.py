"""Channel accounts: a tenant's credentials for one channel, encrypted at rest."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from sopflow.models.types import JSONType, UTCDateTime


class ChannelAccount(SQLModel, table=True):
    __tablename__ = "channel_accounts"
    __table_args__ = (sa.UniqueConstraint("tenant_id", "channel", "name"),)
    id: int | None = Field(default=None, primary_key=True)
    tenant_id: int = Field(foreign_key="tenants.id", index=True)
    channel: str = Field(max_length=50)
    name: str = Field(max_length=100)
    config: dict[str, Any] = Field(default_factory=dict, sa_column=sa.Column(JSONType, nullable=False))
    secrets_ciphertext: str = Field(default="", sa_column=sa.Column(sa.Text, nullable=False))
    created_at: datetime = Field(sa_column=sa.Column(UTCDateTime, nullable=False))

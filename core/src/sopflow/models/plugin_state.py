"""Plugins' key-value state: one JSON value per (plugin, tenant, key).

Plugins reach it only through ``Host.state`` / ``Host.transaction``, which bind
the plugin's own name, so one plugin never sees another's keys.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from sopflow.models.types import JSONType, UTCDateTime


class PluginStateEntry(SQLModel, table=True):
    __tablename__ = "plugin_state"
    plugin: str = Field(primary_key=True, max_length=100)
    tenant_id: int = Field(foreign_key="tenants.id", primary_key=True)
    key: str = Field(primary_key=True, max_length=200)
    value: Any = Field(sa_column=sa.Column(JSONType, nullable=True))
    updated_at: datetime = Field(sa_column=sa.Column(UTCDateTime, nullable=False))

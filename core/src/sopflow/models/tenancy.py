"""Tenants, their API keys (stored hashed) and per-tenant plugin switches."""

from __future__ import annotations

import secrets
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from sopflow.models.types import JSONType, UTCDateTime

SCOPES = ("admin", "read", "ingest")


def new_config_version() -> int:
    """A new tenant's first configuration version: random, not 0, so a test database
    truncated between tests (tenant ids and the manual clock's instants reused) never
    meets the cache entries of the tenants it replaced."""
    return secrets.randbits(62)


class Tenant(SQLModel, table=True):
    __tablename__ = "tenants"
    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(sa_column=sa.Column(sa.String(100), unique=True, nullable=False))
    timezone: str = Field(default="Asia/Shanghai", max_length=64)
    settings: dict[str, Any] = Field(default_factory=dict, sa_column=sa.Column(JSONType, nullable=False))
    created_at: datetime = Field(sa_column=sa.Column(UTCDateTime, nullable=False))
    #: bumped with every change to the tenant's configuration (``sopflow.config_cache``)
    config_version: int = Field(
        default_factory=new_config_version,
        sa_column=sa.Column(sa.BigInteger, nullable=False, server_default="0"),
    )


class ApiKey(SQLModel, table=True):
    """An API key.  Only the SHA-256 of the key is stored; the key is shown once.

    Keys are 32 random bytes, so a fast hash is enough (no password stretching
    needed) and lookups stay O(1) through the unique index on ``key_hash``.
    """

    __tablename__ = "api_keys"
    id: int | None = Field(default=None, primary_key=True)
    tenant_id: int = Field(foreign_key="tenants.id", index=True)
    name: str = Field(default="", max_length=100)
    prefix: str = Field(max_length=16)
    key_hash: str = Field(sa_column=sa.Column(sa.String(64), unique=True, nullable=False))
    scopes: str = Field(max_length=64)
    created_at: datetime = Field(sa_column=sa.Column(UTCDateTime, nullable=False))
    revoked_at: datetime | None = Field(default=None, sa_column=sa.Column(UTCDateTime))


class TenantPlugin(SQLModel, table=True):
    """A tenant's switch for one installed plugin (absent = enabled)."""

    __tablename__ = "tenant_plugins"
    tenant_id: int = Field(foreign_key="tenants.id", primary_key=True)
    plugin: str = Field(primary_key=True, max_length=100)
    enabled: bool = True

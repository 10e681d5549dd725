"""Keyword rules: words in a customer's messages that add or remove tags
and set fields.  ``KeywordRuleRevision`` is a per-tenant counter bumped by
every write, so each process can tell with one primary-key read whether its
compiled automaton is still current."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from sopflow.models.types import JSONType, UTCDateTime


class KeywordRule(SQLModel, table=True):
    __tablename__ = "keyword_rules"
    __table_args__ = (sa.UniqueConstraint("tenant_id", "name"),)
    id: int | None = Field(default=None, primary_key=True)
    tenant_id: int = Field(foreign_key="tenants.id", index=True)
    name: str = Field(max_length=200)
    keywords: list[str] = Field(sa_column=sa.Column(JSONType, nullable=False))
    actions: list[dict[str, Any]] = Field(sa_column=sa.Column(JSONType, nullable=False))
    enabled: bool = True
    case_sensitive: bool = False
    created_at: datetime = Field(sa_column=sa.Column(UTCDateTime, nullable=False))
    updated_at: datetime = Field(sa_column=sa.Column(UTCDateTime, nullable=False))


class KeywordRuleRevision(SQLModel, table=True):
    __tablename__ = "keyword_rule_revisions"
    tenant_id: int = Field(foreign_key="tenants.id", primary_key=True)
    revision: int = Field(default=0, sa_column=sa.Column(sa.BigInteger, nullable=False))

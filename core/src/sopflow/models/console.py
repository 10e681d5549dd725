"""Operator console sessions: an API key exchanged for a cookie at sign-in.

Only the SHA-256 of the session token is stored (like API keys); the CSRF token
is per session and sent back in every form.  A session carries its key's id,
so revoking the key ends every session made with it.
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from sopflow.models.types import UTCDateTime


class ConsoleSession(SQLModel, table=True):
    __tablename__ = "console_sessions"
    id: int | None = Field(default=None, primary_key=True)
    tenant_id: int = Field(foreign_key="tenants.id", index=True)
    api_key_id: int = Field(foreign_key="api_keys.id", index=True)
    token_hash: str = Field(sa_column=sa.Column(sa.String(64), unique=True, nullable=False))
    csrf_token: str = Field(max_length=64)
    created_at: datetime = Field(sa_column=sa.Column(UTCDateTime, nullable=False))
    expires_at: datetime = Field(sa_column=sa.Column(UTCDateTime, nullable=False))
    ended_at: datetime | None = Field(default=None, sa_column=sa.Column(UTCDateTime))

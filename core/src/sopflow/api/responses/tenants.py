"""Tenants, API keys and staff members as the API shows them."""

from __future__ import annotations

from typing import Literal

from sopflow.api.responses import Instant, Out


class TenantOut(Out):
    id: int
    name: str
    timezone: str
    customer_daily_push_cap: int
    created_at: Instant


class NewTenantOut(TenantOut):
    """A new tenant with its first admin key, shown this once."""

    api_key: str


class ApiKeyOut(Out):
    """A key as listed: its prefix, never the key."""

    id: int
    name: str
    prefix: str
    scopes: list[Literal["admin", "read", "ingest"]]
    created_at: Instant
    revoked_at: Instant | None


class NewApiKeyOut(ApiKeyOut):
    """A new key: the key itself, shown this once."""

    api_key: str


class StaffOut(Out):
    id: int
    external_id: str
    name: str
    created_at: Instant
    left_at: Instant | None

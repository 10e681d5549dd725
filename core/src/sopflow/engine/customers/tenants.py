"""Tenants and API keys.  A key is shown once; only its SHA-256 is stored."""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.orm import Session

from sopflow.errors import Conflict, InvalidInput, NotFound
from sopflow.models import SCOPES, ApiKey, Tenant

KEY_PREFIX = "sfk_"


def hash_key(token: str) -> str:
    """The SHA-256 hex digest an API key is stored as (the key itself never is)."""
    return hashlib.sha256(token.encode()).hexdigest()


def check_timezone(tz: str, field: str = "timezone") -> str:
    """``tz`` when it is an IANA time zone name, else ``InvalidInput`` on ``field``."""
    try:
        ZoneInfo(tz)
    except Exception:
        raise InvalidInput(
            [(field, f"{tz!r} is not an IANA time zone name; use e.g. 'Asia/Shanghai'")]
        ) from None
    return tz


def create_tenant(session: Session, name: str, now: datetime, timezone: str = "Asia/Shanghai") -> Tenant:
    """Create a tenant; ``InvalidInput`` for a bad name or time zone, ``Conflict``
    for a name in use."""
    name = name.strip()
    if not name or len(name) > 100:
        raise InvalidInput([("name", "give a tenant name of 1 to 100 characters")])
    check_timezone(timezone)
    if session.scalar(sa.select(Tenant.id).where(Tenant.name == name)) is not None:
        raise Conflict(f"a tenant named {name!r} already exists; choose another name")
    tenant = Tenant(name=name, timezone=timezone, created_at=now)
    session.add(tenant)
    session.flush()
    return tenant


def check_scopes(scopes: list[str]) -> str:
    """``scopes`` as stored (sorted, comma-separated); ``InvalidInput`` when empty
    or naming an unknown scope."""
    bad = [s for s in scopes if s not in SCOPES]
    if bad or not scopes:
        raise InvalidInput([("scopes", f"{bad or 'empty'}: choose from {', '.join(SCOPES)}")])
    return ",".join(sorted(set(scopes)))


def issue_api_key(
    session: Session, tenant_id: int, scopes: list[str], now: datetime, name: str = ""
) -> tuple[ApiKey, str]:
    """Create a key and return it with its plaintext (the only time it exists)."""
    token = KEY_PREFIX + secrets.token_urlsafe(32)
    key = ApiKey(
        tenant_id=tenant_id,
        name=name,
        prefix=token[: len(KEY_PREFIX) + 6],
        key_hash=hash_key(token),
        scopes=check_scopes(scopes),
        created_at=now,
    )
    session.add(key)
    session.flush()
    return key, token


def authenticate(session: Session, token: str) -> ApiKey | None:
    """The live API key ``token`` stands for, or None (unknown, revoked, or not
    a sopflow key at all)."""
    if not token.startswith(KEY_PREFIX):
        return None
    key = session.scalar(sa.select(ApiKey).where(ApiKey.key_hash == hash_key(token)))
    if key is None or key.revoked_at is not None:
        return None
    return key


def key_to_dict(k: ApiKey) -> dict[str, Any]:
    """An API key as the API shows it: never the key itself."""
    return {
        "id": k.id,
        "name": k.name,
        "prefix": k.prefix,
        "scopes": k.scopes.split(","),
        "created_at": k.created_at.isoformat(),
        "revoked_at": k.revoked_at.isoformat() if k.revoked_at else None,
    }


def list_keys(session: Session, tenant_id: int) -> list[dict[str, Any]]:
    """The tenant's API keys, oldest first, revoked ones too."""
    rows = session.scalars(sa.select(ApiKey).where(ApiKey.tenant_id == tenant_id).order_by(ApiKey.id))
    return [key_to_dict(k) for k in rows]


def revoke_key(session: Session, tenant_id: int, key_id: int, now: datetime) -> None:
    """Revoke the tenant's key ``key_id`` (revoking it again changes nothing)."""
    key = session.scalar(sa.select(ApiKey).where(ApiKey.id == key_id, ApiKey.tenant_id == tenant_id))
    if key is None:
        raise NotFound("api key", key_id)
    key.revoked_at = key.revoked_at or now

"""Operator console sessions: sign in with an API key, look a session up, sign out.

The key is checked once, at sign-in, and never stored in the session or the
page; the browser holds only a random session token (its SHA-256 is stored).
Every look-up re-checks the key, so revoking it ends its sessions at once.
"""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta

import attrs
import sqlalchemy as sa
from sqlalchemy.orm import Session

from sopflow.engine.customers.tenants import authenticate, hash_key
from sopflow.errors import InvalidInput
from sopflow.models import ApiKey, ConsoleSession

SESSION_PREFIX = "sfs_"


@attrs.frozen
class ConsoleUser:
    """Who a console request acts as: the key's tenant, id and scopes."""

    session_id: int
    tenant_id: int
    key_id: int
    key_name: str
    scopes: frozenset[str]
    csrf_token: str

    @property
    def can_change(self) -> bool:
        """Admin keys change; read keys only see."""
        return "admin" in self.scopes

    @property
    def actor(self) -> str:
        """How an audited change names who made it."""
        return f"console:api_key:{self.key_id}"


def sign_in(session: Session, api_key: str, now: datetime, minutes: int) -> tuple[str, ConsoleSession]:
    """A new session for a live ``read`` or ``admin`` key: returns the token for the cookie."""
    key = authenticate(session, api_key.strip())
    if key is None:
        raise InvalidInput([("api_key", "this API key is unknown or revoked; paste a live key")])
    scopes = set(key.scopes.split(","))
    if not scopes & {"admin", "read"}:
        raise InvalidInput([("api_key", "an ingest-only key cannot sign in; use a read or admin key")])
    token = SESSION_PREFIX + secrets.token_urlsafe(32)
    row = ConsoleSession(
        tenant_id=key.tenant_id,
        api_key_id=key.id,
        token_hash=hash_key(token),
        csrf_token=secrets.token_urlsafe(32),
        created_at=now,
        expires_at=now + timedelta(minutes=minutes),
    )
    session.add(row)
    session.flush()
    return token, row


def find_user(session: Session, token: str | None, now: datetime) -> ConsoleUser | None:
    """The live session ``token`` stands for (not ended, not expired, its key not revoked)."""
    if not token or not token.startswith(SESSION_PREFIX):
        return None
    row = session.execute(
        sa.select(ConsoleSession, ApiKey)
        .join(ApiKey, ApiKey.id == ConsoleSession.api_key_id)
        .where(ConsoleSession.token_hash == hash_key(token))
    ).first()
    if row is None:
        return None
    live, key = row
    if live.ended_at is not None or live.expires_at <= now or key.revoked_at is not None:
        return None
    return ConsoleUser(
        live.id, live.tenant_id, key.id, key.name, frozenset(key.scopes.split(",")), live.csrf_token
    )


def sign_out(session: Session, token: str | None, now: datetime) -> None:
    """End the session server-side (a copied cookie stops working too)."""
    if token:
        session.execute(
            sa.update(ConsoleSession)
            .where(ConsoleSession.token_hash == hash_key(token), ConsoleSession.ended_at.is_(None))
            .values(ended_at=now)
        )

"""Who is looking at the sidebar: a session opened from WeCom's OAuth identity.

The rules are the console's (``sopflow.console.sessions``): the browser holds
only a random token in a cookie that is HttpOnly (no script reads it),
SameSite=Strict (no other site's page sends it) and Secure over HTTPS; only its
SHA-256 is stored, with the session's CSRF token and its expiry (the console's
8 hours); an ended or expired session is refused.  The identity is the WeCom
member the OAuth code was issued to (``oauth.member_from_code``), never a typed
key.  Sessions live in the plugin's durable state for the account's tenant, so
every process knows them.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import datetime, timedelta
from http.cookies import SimpleCookie
from typing import Any

import attrs
from sopflow_sdk import FatalError, Host

COOKIE = "sopflow_wecom_sidebar"
#: the console's default session length (SOPFLOW_CONSOLE_SESSION_MINUTES)
SESSION_MINUTES = 480
PREFIX = "sidebar.session."


@attrs.frozen
class SidebarUser:
    """The staff member a sidebar request acts for."""

    tenant_id: int
    account_id: int
    userid: str
    csrf_token: str

    @property
    def actor(self) -> str:
        """How an audited change names who made it."""
        return f"wecom_sidebar:{self.account_id}:{self.userid}"


def _key(token: str) -> str:
    return PREFIX + hashlib.sha256(token.encode()).hexdigest()


def cookie_path(account_id: int) -> str:
    return f"/plugins/wecom/sidebar/{account_id}"


def _prune(state: Any, now: datetime) -> None:
    """Drop the tenant's expired sessions, so the state stays small."""
    for key, value in state.items(PREFIX).items():
        if datetime.fromisoformat(value["expires_at"]) <= now:
            state.delete(key)


def open_session(host: Host, account: Any, userid: str) -> tuple[str, SidebarUser]:
    """A new session for ``userid`` on ``account``: the token for the cookie and the user.
    Expired sessions of the tenant are dropped on the way."""
    now = host.now()
    state = host.state(account.tenant_id)
    _prune(state, now)
    token = secrets.token_urlsafe(32)
    user = SidebarUser(account.tenant_id, account.id, userid, secrets.token_urlsafe(32))
    state.set(
        _key(token),
        {
            "account_id": account.id,
            "userid": userid,
            "csrf": user.csrf_token,
            "expires_at": (now + timedelta(minutes=SESSION_MINUTES)).isoformat(),
        },
    )
    return token, user


def close_session(host: Host, account: Any, cookie_header: str | None) -> bool:
    """Sign out: the session the cookie stands for is deleted (and the tenant's
    expired ones with it); ``True`` when there was one."""
    token = read_cookie(cookie_header)
    state = host.state(account.tenant_id)
    _prune(state, host.now())
    return bool(token) and state.delete(_key(token))


def clear_cookie(account_id: int, https: bool) -> str:
    """The ``Set-Cookie`` value that makes the browser forget the session."""
    flags = f"Path={cookie_path(account_id)}; Max-Age=0; HttpOnly; SameSite=Strict"
    return f"{COOKIE}=; {flags}" + ("; Secure" if https else "")


def find_user(host: Host, account: Any, cookie_header: str | None) -> SidebarUser | None:
    """The live session the request's cookie stands for, on this account, or ``None``."""
    token = read_cookie(cookie_header)
    if not token:
        return None
    try:
        found = host.state(account.tenant_id).get(_key(token))
    except FatalError:  # the plugin is off for the tenant: no sidebar either
        return None
    if not isinstance(found, dict) or found.get("account_id") != account.id:
        return None
    if datetime.fromisoformat(found["expires_at"]) <= host.now():
        return None
    return SidebarUser(account.tenant_id, account.id, str(found["userid"]), str(found["csrf"]))


def read_cookie(header: str | None) -> str | None:
    if not header:
        return None
    jar: SimpleCookie = SimpleCookie()
    try:
        jar.load(header)
    except Exception:  # a malformed header is no session
        return None
    morsel = jar.get(COOKIE)
    return morsel.value if morsel else None


def set_cookie(token: str, account_id: int, https: bool) -> str:
    """The ``Set-Cookie`` value for a new session (the console's flags)."""
    flags = f"Path={cookie_path(account_id)}; Max-Age={SESSION_MINUTES * 60}; HttpOnly; SameSite=Strict"
    return f"{COOKIE}={token}; {flags}" + ("; Secure" if https else "")


def same_token(given: str | None, expected: str) -> bool:
    return bool(given) and hmac.compare_digest(str(given).encode(), expected.encode())

"""The console's gate: every request but the sign-in page and the static files
needs a live session cookie; every POST needs the session's CSRF token.

The cookie is HttpOnly (no script reads it), SameSite=Strict (no other site's
page sends it) and Secure over HTTPS; it holds a random session token, never
the API key.  Sign-in itself is guarded by a double-submit token, so another
site cannot sign a browser in with its own key.
"""

from __future__ import annotations

import hmac
import secrets
from typing import Any

from anyio import to_thread
from litestar import Request, Response
from litestar.response import Redirect

from sopflow.console.menu import enabled_pages
from sopflow.console.render import page
from sopflow.engine.customers.console_sessions import ConsoleUser, find_user

SESSION_COOKIE = "sopflow_console"
SIGN_IN_COOKIE = "sopflow_console_sign_in"
PUBLIC = ("/console/sign-in", "/console/static/")


def cookie_options(request: Request) -> dict[str, Any]:
    return {
        "path": "/console",
        "httponly": True,
        "samesite": "strict",
        "secure": request.url.scheme == "https",
    }


def new_sign_in_token() -> str:
    return secrets.token_urlsafe(24)


def same_token(given: str | None, expected: str | None) -> bool:
    return bool(given and expected) and hmac.compare_digest(str(given).encode(), str(expected).encode())


async def gate(request: Request) -> Response[Any] | None:
    """Litestar ``before_request`` for the console router: ``None`` lets the request through."""
    path = request.url.path
    if path == "/console/sign-in" or path.startswith("/console/static/"):
        return None
    app = request.app.state.sopflow
    token = request.cookies.get(SESSION_COOKIE)

    def lookup() -> tuple[ConsoleUser | None, list[Any]]:
        with app.tx() as s:
            found = find_user(s, token, app.now())
            return found, enabled_pages(app, s, found.tenant_id) if found else []

    user, plugin_pages = await to_thread.run_sync(lookup)
    if user is None:
        if request.method == "GET":
            return Redirect("/console/sign-in")
        return page(request, "message.html", status=401, message_key="session_needed")
    request.state.console_user = user
    request.state.console_plugin_pages = plugin_pages
    if request.method != "GET":
        given = request.headers.get("x-csrf-token") or (await request.form()).get("_csrf")
        if not same_token(given, user.csrf_token):
            return page(request, "message.html", status=403, message_key="csrf_refused")
    return None


def current_user(request: Request) -> ConsoleUser:
    """The signed-in user (the gate has set it)."""
    return request.state.console_user


def may_change(request: Request) -> Response[Any] | None:
    """``None`` for an admin key; a 403 page for a read key."""
    if current_user(request).can_change:
        return None
    return page(request, "message.html", status=403, message_key="forbidden")

"""``Allow`` on ``OPTIONS``: every method the path serves.

Litestar answers ``OPTIONS`` for each route handler with that handler's
methods only, so ``OPTIONS /api/v1/tenants/current`` said ``GET, OPTIONS``
although the path also takes ``PATCH``.  This middleware rewrites the header
from all the routes that share the matched path template."""

from __future__ import annotations

from typing import Any

from litestar.types import ASGIApp, Message, Receive, Scope, Send


def _methods_by_template(litestar_app: Any) -> dict[str, str]:
    merged: dict[str, set[str]] = {}
    for route in litestar_app.routes:
        methods = getattr(route, "methods", None)
        if methods:
            merged.setdefault(route.path_format, set()).update(methods)
    return {template: ", ".join(sorted(methods)) for template, methods in merged.items()}


def allow_header() -> Any:
    """ASGI middleware setting ``Allow`` on ``OPTIONS`` answers to the path's methods."""
    cache: dict[str, str] = {}

    def middleware(app: ASGIApp) -> ASGIApp:
        async def wrapped(scope: Scope, receive: Receive, send: Send) -> None:
            if scope["type"] != "http" or scope["method"] != "OPTIONS":
                await app(scope, receive, send)
                return

            async def rewrite(message: Message) -> None:
                if message["type"] == "http.response.start":
                    if not cache:
                        cache.update(_methods_by_template(scope["litestar_app"]))
                    allowed = cache.get(scope.get("path_template", ""))
                    if allowed:
                        headers = [(k, v) for k, v in message.get("headers", []) if k.lower() != b"allow"]
                        message = {**message, "headers": [*headers, (b"allow", allowed.encode())]}
                await send(message)

            await app(scope, receive, rewrite)

        return wrapped

    return middleware

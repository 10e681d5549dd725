"""The plugin pages a tenant's console lists: registrations of plugins enabled for it."""

from __future__ import annotations

from typing import Any


def enabled_pages(app: Any, session: Any, tenant_id: int) -> list[Any]:
    """``register_console_pages`` registrations of the plugins enabled for ``tenant_id``."""
    return [
        r
        for r in app.plugins.registry.all("register_console_pages")
        if app.plugin_enabled(session, tenant_id, r.plugin)
    ]


def menu_entries(registrations: list[Any]) -> list[dict[str, str]]:
    return [
        {"href": f"/console/plugins/{r.plugin}/{r.spec.path}", "title": r.spec.title} for r in registrations
    ]

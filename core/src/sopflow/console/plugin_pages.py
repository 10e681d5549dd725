"""Pages and panels plugins add through ``register_console_pages``: served
behind the console's sign-in, only for tenants the plugin is enabled for, the
plugin's fragment placed inside the console's own page."""

from __future__ import annotations

from typing import Any

from litestar import Request, Response, get
from markupsafe import Markup
from sopflow_sdk import ConsoleRequest

from sopflow.console.render import language, page
from sopflow.console.sessions import current_user
from sopflow.errors import NotFound
from sopflow.host import PluginHost


def _console_request(request: Request) -> ConsoleRequest:
    user = current_user(request)
    return ConsoleRequest(user.tenant_id, language(request), dict(request.query_params), user.can_change)


def _enabled(request: Request) -> list[Any]:
    """The registrations of plugins enabled for the signed-in tenant (read by the gate)."""
    return list(request.state.console_plugin_pages)


def _render(request: Request, reg: Any) -> Markup:
    app = request.app.state.sopflow
    try:
        html = reg.spec.render(_console_request(request), PluginHost(app, reg.plugin))
    except Exception as exc:  # one plugin's failure must not take the page down
        app.log.warning(
            "console_page_failed", plugin=reg.plugin, page=reg.spec.path, error=type(exc).__name__
        )
        return Markup('<p class="error" role="alert">This panel failed to render; see the server log.</p>')
    return Markup(str(html))


def panels_for(request: Request, core_page: str) -> list[dict[str, Any]]:
    """The panels enabled plugins show on ``core_page``, rendered."""
    return [
        {"title": r.spec.title, "plugin": r.plugin, "html": _render(request, r)}
        for r in _enabled(request)
        if r.spec.panel_on == core_page
    ]


@get("/plugins/{plugin:str}/{path:str}", sync_to_thread=True)
def plugin_page(request: Request, plugin: str, path: str) -> Response[str]:
    for reg in _enabled(request):
        if reg.plugin == plugin and reg.spec.path == path:
            return page(request, "plugin_page.html", title=reg.spec.title, html=_render(request, reg))
    raise NotFound("console page", f"{plugin}/{path}")

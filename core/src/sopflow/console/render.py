"""Render a console page: Jinja2 templates (autoescaped) with the labels, the
signed-in user, the CSRF token and the security headers every page carries."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from jinja2 import Environment, PackageLoader, select_autoescape
from litestar import Request, Response

from sopflow.console.labels import labels_for, pick_language
from sopflow.console.menu import menu_entries

LANG_COOKIE = "sopflow_lang"

#: Everything the console loads is its own (no CDN); inline script and style are refused.
HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
        "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}

ENV = Environment(
    loader=PackageLoader("sopflow.console", "templates"),
    autoescape=select_autoescape(default=True, default_for_string=True),
)


def short_time(value: str | datetime | None) -> str:
    """``2026-12-02 14:05`` (UTC) for an ISO instant; empty for none."""
    if not value:
        return ""
    when = datetime.fromisoformat(value) if isinstance(value, str) else value
    return when.strftime("%Y-%m-%d %H:%M")


ENV.filters["when"] = short_time


def language(request: Request) -> str:
    return pick_language(
        request.query_params.get("lang"),
        request.cookies.get(LANG_COOKIE),
        request.headers.get("accept-language", ""),
    )


def page(request: Request, template: str, *, status: int = 200, **context: Any) -> Response[str]:
    """The page as an HTML response (``lang`` remembered when asked for)."""
    lang = language(request)
    user = request.state.get("console_user")
    html = ENV.get_template(template).render(
        t=labels_for(lang),
        lang=lang,
        other_lang="en" if lang == "zh" else "zh",
        user=user,
        csrf=user.csrf_token if user else "",
        path=request.url.path,
        plugin_menu=menu_entries(request.state.get("console_plugin_pages", [])),
        **context,
    )
    response: Response[str] = Response(html, status_code=status, media_type="text/html", headers=HEADERS)
    if request.query_params.get("lang") == lang:
        response.set_cookie(LANG_COOKIE, lang, path="/console", samesite="strict", max_age=365 * 86400)
    return response

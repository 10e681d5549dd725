"""register_console_pages: a plugin's page and panel in the operator console,
behind the sign-in, for tenants the plugin is enabled for, escaped by the
plugin, one failing panel not taking the page down."""

from __future__ import annotations

import html
from typing import Any

import pytest
from sopflow_sdk import ConsolePage, ConsoleRequest

from tests.console_support import sign_in
from tests.test_hooks import app_with, plugin  # noqa: F401  (app_with is a fixture)

SEEN: list[ConsoleRequest] = []


def _codes(request: ConsoleRequest, host: Any) -> str:
    SEEN.append(request)
    asked = html.escape(request.query.get("q", "<none>"))
    return f"<p class='codes'>codes of tenant {request.tenant_id} {asked}</p>"


def _broken(request: ConsoleRequest, host: Any) -> str:
    raise RuntimeError("the plugin's table is gone")


def _pages(register: Any) -> None:
    register(ConsolePage("live-codes", "Live codes 渠道活码", _codes, panel_on="channels"))
    register(ConsolePage("broken", "Broken", _broken, panel_on="channels"))


def test_hook_register_console_pages_adds_a_page_and_a_panel(app_with):  # noqa: F811
    SEEN.clear()
    _, api = app_with(("livecodes", plugin("livecodes", register_console_pages=_pages)))
    client = api.client
    assert client.get("/console/plugins/livecodes/live-codes", follow_redirects=False).status_code == 302
    sign_in(client, api.key)
    board = client.get("/console/board")
    assert (
        'href="/console/plugins/livecodes/live-codes"' in board.text and "Live codes 渠道活码" in board.text
    )
    page = client.get("/console/plugins/livecodes/live-codes", params={"q": "<b>x</b>", "lang": "zh"})
    assert page.status_code == 200 and f"codes of tenant {api.tenant_id} &lt;b&gt;x&lt;/b&gt;" in page.text
    assert SEEN[-1].lang == "zh" and SEEN[-1].can_change is True
    channels = client.get("/console/channels")
    assert channels.status_code == 200 and "<p class='codes'>" in channels.text
    assert "This panel failed to render" in channels.text  # the broken panel, the page still whole
    assert client.get("/console/plugins/livecodes/nope").status_code == 404
    # switched off for the tenant: no menu entry, no page, no panel
    assert api.put("/api/v1/plugins/livecodes", json={"enabled": False}).status_code == 200
    assert client.get("/console/plugins/livecodes/live-codes").status_code == 404
    assert "Live codes" not in client.get("/console/channels").text


def test_a_console_page_path_is_one_segment():
    with pytest.raises(ValueError, match="one lower-case segment"):
        ConsolePage("a/b", "x", _codes)
    with pytest.raises(ValueError, match="one lower-case segment"):
        ConsolePage("Codes", "x", _codes)

"""Channels: the tenant's channel accounts with their health, and the panels
plugins contribute to this page (a WeCom plugin's live codes, a personal-WeChat
account's login QR) through ``register_console_pages``."""

from __future__ import annotations

from collections.abc import Mapping

import sqlalchemy as sa
from litestar import Request, Response, get

from sopflow.console.labels import labels_for
from sopflow.console.plugin_pages import panels_for
from sopflow.console.render import language, page
from sopflow.console.sessions import current_user
from sopflow.engine.delivery.account_health import AccountHealth, account_health
from sopflow.models import ChannelAccount


@get("/channels", sync_to_thread=True)
def channels_page(request: Request) -> Response[str]:
    user = current_user(request)
    app = request.app.state.sopflow
    accounts = []
    t = labels_for(language(request))
    with app.read() as s:
        recent = account_health(s, user.tenant_id, app.now())
        for a in s.scalars(
            sa.select(ChannelAccount)
            .where(ChannelAccount.tenant_id == user.tenant_id)
            .order_by(ChannelAccount.id)
        ):
            reg = app.plugins.registry.get("register_channels", a.channel)
            if reg is None:
                health = ("bad", f"no channel {a.channel!r} is installed")
            elif not app.plugin_enabled(s, user.tenant_id, reg.plugin):
                health = ("bad", f"plugin {reg.plugin!r} is disabled for this tenant")
            else:
                health = delivery_health(recent.get(a.id), t)
            accounts.append({"id": a.id, "channel": a.channel, "name": a.name, "health": health})
    panels = panels_for(request, "channels")
    return page(request, "channels.html", accounts=accounts, panels=panels)


def delivery_health(h: AccountHealth | None, t: Mapping[str, str]) -> tuple[str, str]:
    """The channels page's cell: a state class and what the last day says."""
    if h is None or h.state == "idle":
        return ("idle", t["health_idle"])
    text = t["health_counts"].format(sent=h.sent, failed=h.failed, retrying=h.retrying)
    if h.last_error:
        text += f" {t['health_last_error']}: {h.last_error[:200]}"
    return (h.state, text)

"""Channels: the tenant's channel accounts with their health, and the panels
plugins contribute to this page (a WeCom plugin's live codes, a personal-WeChat
account's login QR) through ``register_console_pages``."""

from __future__ import annotations

import sqlalchemy as sa
from litestar import Request, Response, get

from sopflow.console.plugin_pages import panels_for
from sopflow.console.render import page
from sopflow.console.sessions import current_user
from sopflow.models import ChannelAccount


@get("/channels", sync_to_thread=True)
def channels_page(request: Request) -> Response[str]:
    user = current_user(request)
    app = request.app.state.sopflow
    accounts = []
    with app.tx() as s:
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
                health = ("ok", "ready")
            accounts.append({"id": a.id, "channel": a.channel, "name": a.name, "health": health})
    panels = panels_for(request, "channels")
    return page(request, "channels.html", accounts=accounts, panels=panels)

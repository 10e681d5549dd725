"""Installed plugins and the tenant's switch for each."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, get, put
from litestar.di import NamedDependency
from litestar.params import JSONBody

from sopflow.api.auth import Auth, needs, sopflow_app
from sopflow.api.schemas import PluginSwitch
from sopflow.app import SopflowApp
from sopflow.errors import InvalidInput, NotFound
from sopflow.models import TenantPlugin


def plugin_rows(app: SopflowApp, disabled: set[str]) -> list[dict[str, Any]]:
    return [
        {
            "name": i.name,
            "distribution": i.distribution,
            "version": i.version,
            "hooks": i.hooks,
            "default": i.default,
            "enabled": i.name not in disabled,
        }
        for i in app.plugins.infos.values()
    ]


class PluginController(Controller):
    path = "/api/v1/plugins"
    tags = ["plugins"]

    @get(
        "/",
        sync_to_thread=True,
        summary="Installed plugins and whether each is on for this tenant",
        guards=[needs("read")],
    )
    def list_plugins(self, request: Request, auth: NamedDependency[Auth]) -> list[dict[str, Any]]:
        app = sopflow_app(request)
        with app.read() as s:
            return plugin_rows(app, app.disabled_plugins(s, auth.tenant_id))

    @put(
        "/{name:str}",
        sync_to_thread=True,
        summary="Switch a plugin on or off for this tenant",
        guards=[needs("admin")],
    )
    def switch(
        self, request: Request, auth: NamedDependency[Auth], name: str, data: JSONBody[PluginSwitch]
    ) -> dict[str, Any]:
        app = sopflow_app(request)
        info = app.plugins.infos.get(name)
        if info is None:
            raise NotFound("plugin", f"{name!r} (installed: {', '.join(app.plugins.names)})")
        if info.default and not data.enabled:
            raise InvalidInput(
                [
                    (
                        "enabled",
                        f"'{name}' is built in; disable it for the whole deployment "
                        "with SOPFLOW_DISABLED_PLUGINS instead",
                    )
                ]
            )
        with app.tx() as s:
            row = s.get(TenantPlugin, (auth.tenant_id, name))
            if row is None:
                s.add(TenantPlugin(tenant_id=auth.tenant_id, plugin=name, enabled=data.enabled))
            else:
                row.enabled = data.enabled
            s.flush()
            return next(
                r for r in plugin_rows(app, app.disabled_plugins(s, auth.tenant_id)) if r["name"] == name
            )

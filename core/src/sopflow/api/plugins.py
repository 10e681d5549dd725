"""Installed plugins and the tenant's switch for each."""

from __future__ import annotations

from typing import Any

from litestar import Controller, get, put
from litestar.di import NamedDependency
from litestar.params import JSONBody

from sopflow.api.auth import Auth, needs
from sopflow.api.responses import shape
from sopflow.api.responses.settings import PluginOut
from sopflow.api.schemas import PluginSwitch
from sopflow.app import SopflowApp
from sopflow.db import Session
from sopflow.errors import InvalidInput, NotFound


def plugin_rows(app: SopflowApp, disabled: set[str] | frozenset[str]) -> list[dict[str, Any]]:
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
    def list_plugins(
        self,
        sopflow: NamedDependency[SopflowApp],
        auth: NamedDependency[Auth],
        session: NamedDependency[Session],
    ) -> list[PluginOut]:
        return shape(list[PluginOut], plugin_rows(sopflow, sopflow.disabled_plugins(session, auth.tenant_id)))

    @put(
        "/{name:str}",
        sync_to_thread=True,
        summary="Switch a plugin on or off for this tenant",
        guards=[needs("admin")],
    )
    def switch(
        self,
        sopflow: NamedDependency[SopflowApp],
        auth: NamedDependency[Auth],
        session: NamedDependency[Session],
        name: str,
        data: JSONBody[PluginSwitch],
    ) -> PluginOut:
        info = sopflow.plugins.infos.get(name)
        if info is None:
            raise NotFound("plugin", f"{name!r} (installed: {', '.join(sopflow.plugins.names)})")
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
        sopflow.switch_plugin(session, auth.tenant_id, name, data.enabled)
        rows = plugin_rows(sopflow, sopflow.disabled_plugins(session, auth.tenant_id))
        return shape(PluginOut, next(r for r in rows if r["name"] == name))

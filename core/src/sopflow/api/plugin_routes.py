"""Mount plugin routes (``RouteSpec``) at ``/plugins/<plugin>/<path>``.

Plugins see a framework-neutral request and the ``Host``; this module is the
only place that knows Litestar on their behalf.
"""

from __future__ import annotations

from typing import Any

from litestar import Request, Response, route
from litestar.handlers import HTTPRouteHandler
from sopflow_sdk import InboundRequest, InboundResponse, ScopeError, SignatureError

from sopflow.app import SopflowApp
from sopflow.host import PluginHost


def plugin_route_handlers(app: SopflowApp) -> list[HTTPRouteHandler]:
    handlers = []
    for reg in app.plugins.registry.all("register_routes"):
        handlers.append(_make_handler(app, reg.plugin, reg.spec))
    return handlers


def _make_handler(app: SopflowApp, plugin: str, spec: Any) -> HTTPRouteHandler:
    host = PluginHost(app, plugin)

    async def handler(request: Request) -> Response[Any]:
        body = await request.body()
        inbound = InboundRequest(
            method=request.method,
            path=request.url.path,
            query=dict(request.query_params),
            headers=dict(request.headers),
            body=body,
            path_params={k: str(v) for k, v in request.path_params.items()},
            remote_addr=request.client.host if request.client else "",
        )
        from anyio import to_thread

        try:
            result: InboundResponse = await to_thread.run_sync(spec.handler, inbound, host)
        except ScopeError as exc:
            return Response(
                {"type": "about:blank", "title": "Forbidden", "status": 403, "detail": exc.user_message},
                status_code=403,
                media_type="application/problem+json",
            )
        except SignatureError as exc:
            app.log.warning("inbound_rejected", plugin=plugin, reason=exc.internal_message)
            return Response(
                {"type": "about:blank", "title": "Forbidden", "status": 403, "detail": exc.user_message},
                status_code=403,
                media_type="application/problem+json",
            )
        return Response(
            result.body,
            status_code=result.status,
            media_type=result.media_type,
            headers=dict(getattr(result, "headers", None) or {}),
        )

    handler.__name__ = f"plugin_{plugin}_{spec.path}".replace("/", "_").replace("{", "").replace("}", "")
    path = f"/plugins/{plugin}/{spec.path.lstrip('/')}"
    return route(
        path,
        http_method=list(spec.methods),
        status_code=200,  # a default only: the plugin's response sets the real one (DELETE's 204 included)
        tags=[f"plugin:{plugin}"],
        summary=spec.description or f"{plugin} webhook",
    )(handler)

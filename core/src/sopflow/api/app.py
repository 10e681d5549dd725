"""Build the Litestar application for one ``SopflowApp``."""

from __future__ import annotations

import time
import uuid
from typing import Any

import structlog
from litestar import Litestar
from litestar.datastructures import State
from litestar.di import Provide
from litestar.logging.config import LoggingConfig
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import ScalarRenderPlugin, SwaggerRenderPlugin
from litestar.openapi.spec import Components, SecurityScheme
from litestar.types import ASGIApp, Receive, Scope, Send
from prometheus_client import CollectorRegistry, Counter, Histogram

from sopflow import __version__
from sopflow.api.allow import allow_header
from sopflow.api.auth import provide_auth
from sopflow.api.body_schemas import body_components, installed_choices, point_parsed_bodies
from sopflow.api.channel_accounts import ChannelAccountController
from sopflow.api.channel_schemas import channel_components
from sopflow.api.clock import ClockController
from sopflow.api.customers import CustomerController
from sopflow.api.deps import DEPENDENCIES
from sopflow.api.events import EventController
from sopflow.api.fields import FieldController
from sopflow.api.forecast import ForecastController
from sopflow.api.ingest_writer import IngestWriter
from sopflow.api.journeys import JourneyController
from sopflow.api.keyword_rules import KeywordRuleController
from sopflow.api.nesting import nesting_guard
from sopflow.api.nul_schemas import no_nul_components
from sopflow.api.openapi_responses import document_problems
from sopflow.api.pipelines import PipelineController, StageController
from sopflow.api.plugin_routes import plugin_route_handlers
from sopflow.api.plugins import PluginController
from sopflow.api.problems import EXCEPTION_HANDLERS
from sopflow.api.response_schemas import response_components, response_documents
from sopflow.api.segments import SegmentController
from sopflow.api.sops import EnrollmentController, SopController, TouchController
from sopflow.api.staff import StaffController
from sopflow.api.strict_body import strict_body
from sopflow.api.system import health, metrics
from sopflow.api.tenants import ApiKeyController, TenantController
from sopflow.app import SopflowApp
from sopflow.console.routes import console_routers

CONTROLLERS = [
    TenantController,
    ApiKeyController,
    FieldController,
    PipelineController,
    StageController,
    CustomerController,
    EventController,
    StaffController,
    ChannelAccountController,
    PluginController,
    ClockController,
    SegmentController,
    KeywordRuleController,
    JourneyController,
    SopController,
    EnrollmentController,
    TouchController,
    ForecastController,
]


def _observability(registry: CollectorRegistry) -> Any:
    requests = Counter(
        "sopflow_http_requests_total", "HTTP requests", ["method", "route", "status"], registry=registry
    )
    latency = Histogram(
        "sopflow_http_request_seconds", "HTTP request latency", ["method", "route"], registry=registry
    )

    def middleware(app: ASGIApp) -> ASGIApp:
        async def wrapped(scope: Scope, receive: Receive, send: Send) -> None:
            if scope["type"] != "http":
                await app(scope, receive, send)
                return
            status = {"code": 500}

            async def capture(message: Any) -> None:
                if message["type"] == "http.response.start":
                    status["code"] = message["status"]
                await send(message)

            structlog.contextvars.bind_contextvars(request_id=uuid.uuid4().hex[:12])
            started = time.perf_counter()
            try:
                await app(scope, receive, capture)
            finally:
                route = scope.get("path_template") or (
                    "unmatched" if status["code"] == 404 else scope["path"]
                )
                requests.labels(scope["method"], route, str(status["code"])).inc()
                latency.labels(scope["method"], route).observe(time.perf_counter() - started)
                structlog.contextvars.clear_contextvars()

        return wrapped

    return middleware


def build_api(app: SopflowApp) -> Litestar:
    registry = CollectorRegistry()
    writer = IngestWriter(app, app.settings.ingest_group_events)
    handlers: list[Any] = [
        health,
        metrics,
        *CONTROLLERS,
        *plugin_route_handlers(app),
        *console_routers(),  # the operator console (sopflow.console, docs/console.md)
    ]
    api = Litestar(
        route_handlers=handlers,
        dependencies={"auth": Provide(provide_auth, sync_to_thread=True), **DEPENDENCIES},
        exception_handlers=EXCEPTION_HANDLERS,
        before_request=strict_body,  # a body's booleans and numbers as JSON types (api/strict_body.py)
        middleware=[_observability(registry), allow_header(), nesting_guard(app.settings.max_body_bytes)],
        state=State({"sopflow": app, "metrics_registry": registry, "ingest_writer": writer}),
        on_shutdown=[writer.close],
        request_max_body_size=app.settings.max_body_bytes,
        # sopflow logs through structlog (redacted, SOPFLOW_LOG_LEVEL); Litestar must not
        # turn the root logger to INFO, which would print every client library's requests.
        logging_config=LoggingConfig(configure_root_logger=False),
        openapi_config=OpenAPIConfig(
            title="sopflow",
            version=__version__,
            description="Run customer follow-up SOPs over WeCom, WeChat and other channels.",
            path="/schema",
            render_plugins=[ScalarRenderPlugin(), SwaggerRenderPlugin(path="/swagger")],
            components=Components(
                security_schemes={
                    "bearer": SecurityScheme(
                        type="http", scheme="bearer", description="an API key from `sopflow tenants create`"
                    )
                },
            ),
            security=[{"bearer": []}],
        ),
        debug=False,
    )
    # Litestar builds the document's components from the handlers' types (and caches it);
    # each channel's declared settings are added to them (api/channel_schemas.py).
    components = api.openapi_schema.components
    components.schemas = {
        **(components.schemas or {}),
        **response_components(api),  # msgspec's own schema of each success body (api/response_schemas.py)
        **body_components(api),  # msgspec's own schema of each body (api/body_schemas.py)
        **channel_components(app.plugins),
    }
    installed_choices(components.schemas, app)
    # the stated documents a success body holds (an SOP definition, a rule, an account's config)
    response_documents(
        components.schemas, sorted(r.spec.name for r in app.plugins.registry.all("register_channels"))
    )
    point_parsed_bodies(api.openapi_schema)
    no_nul_components(components.schemas)  # no NUL in any body (api/nul_schemas.py)
    document_problems(api.openapi_schema)  # every status each route can answer (api/openapi_responses.py)
    return api

"""Unauthenticated endpoints: /health and Prometheus /metrics."""

from __future__ import annotations

from litestar import Request, Response, get
from litestar.di import NamedDependency
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from sopflow.api.responses.settings import HealthOut
from sopflow.app import SopflowApp
from sopflow.db import reachable


@get("/health", sync_to_thread=True, tags=["system"], summary="Liveness and database check")
def health(sopflow: NamedDependency[SopflowApp]) -> Response[HealthOut]:
    up = reachable(sopflow.engine)
    body = HealthOut(
        status="ok" if up else "degraded",
        database="ok" if up else "unavailable",
        clock="manual" if sopflow.clock.manual else "system",
    )
    return Response(body, status_code=200 if up else 503)


@get("/metrics", sync_to_thread=False, tags=["system"], summary="Prometheus metrics", media_type="text/plain")
def metrics(request: Request) -> Response[bytes]:
    return Response(generate_latest(request.app.state.metrics_registry), media_type=CONTENT_TYPE_LATEST)

"""Unauthenticated endpoints: /health and Prometheus /metrics."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from litestar import Request, Response, get
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from sopflow.api.auth import sopflow_app


@get("/health", sync_to_thread=True, tags=["system"], summary="Liveness and database check")
def health(request: Request) -> Response[dict[str, Any]]:
    app = sopflow_app(request)
    try:
        with app.engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
        db = "ok"
    except Exception:
        db = "unavailable"
    status = 200 if db == "ok" else 503
    return Response(
        {
            "status": "ok" if db == "ok" else "degraded",
            "database": db,
            "clock": "manual" if app.clock.manual else "system",
        },
        status_code=status,
    )


@get("/metrics", sync_to_thread=False, tags=["system"], summary="Prometheus metrics", media_type="text/plain")
def metrics(request: Request) -> Response[bytes]:
    return Response(generate_latest(request.app.state.metrics_registry), media_type=CONTENT_TYPE_LATEST)

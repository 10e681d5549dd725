"""Outages of a dependency answer 503 with ``Retry-After``, never 500.

The body is a problem document naming the dependency (``database``, ``disk``
or ``broker``), so a client knows the request changed nothing and may be sent
again as it was (events carry idempotency keys, so a repeat is harmless either
way).  Work already stored is never answered with a 5xx: the ingest endpoints
acknowledge once the transaction committed (``EngineContext.enqueue_after_commit``).
"""

from __future__ import annotations

from typing import Any

from litestar import Request, Response

from sopflow.outages import dependency_of

PROBLEM_JSON = "application/problem+json"
PROBLEM_TYPE = "https://sopflow.dev/problems/dependency-unavailable"

_DETAIL = {
    "database": "the database cannot be reached; nothing was stored — send the request again later",
    "disk": "the database's disk is full or read-only; nothing was stored — send the request again later",
    "broker": "the message broker cannot be reached; nothing was changed — send the request again later",
}


def outage_response(request: Request, exc: BaseException) -> Response[Any] | None:
    """The 503 for ``exc`` when it is an outage, else None."""
    dependency = dependency_of(exc)
    if dependency is None:
        return None
    app = request.app.state.sopflow
    app.failures.report("request_failed", exc, path=request.url.path)
    retry_after = app.settings.retry_after_seconds
    body = {
        "type": PROBLEM_TYPE,
        "title": "Service unavailable",
        "status": 503,
        "detail": _DETAIL[dependency],
        "instance": request.url.path,
        "dependency": dependency,
        "retry_after": retry_after,
    }
    return Response(
        content=body, status_code=503, media_type=PROBLEM_JSON, headers={"Retry-After": str(retry_after)}
    )

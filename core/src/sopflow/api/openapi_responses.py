"""Every status a route can answer, in the OpenAPI document, with its problem body.

Litestar documents a handler's success response from its return type; the
errors come from guards, validation, the domain and the outage handler, which
the handler's signature does not show.  This pass adds them to every operation
from what the route is (which scope guards it, whether it takes a body or a
path id, whether it changes data), so the document states what a client will
see, and the routes that need no key say so (``security: []``)."""

from __future__ import annotations

from litestar.openapi.spec import (
    OpenAPI,
    OpenAPIHeader,
    OpenAPIMediaType,
    OpenAPIResponse,
    OpenAPIType,
    Operation,
    Reference,
    Schema,
)

PROBLEM_JSON = "application/problem+json"

_PROBLEM = Schema(
    type=OpenAPIType.OBJECT,
    description="RFC 9457 problem details",
    required=["type", "title", "status", "detail"],
    properties={
        "type": Schema(type=OpenAPIType.STRING),
        "title": Schema(type=OpenAPIType.STRING),
        "status": Schema(type=OpenAPIType.INTEGER),
        "detail": Schema(type=OpenAPIType.STRING),
        "instance": Schema(type=OpenAPIType.STRING),
        "errors": Schema(
            type=OpenAPIType.ARRAY,
            description="each problem with the field it is about",
            items=Schema(
                type=OpenAPIType.OBJECT,
                properties={
                    "field": Schema(type=OpenAPIType.STRING),
                    "message": Schema(type=OpenAPIType.STRING),
                },
            ),
        ),
        "dependency": Schema(type=OpenAPIType.STRING, description="on a 503: database, disk or broker"),
    },
)

_WHY = {
    400: "the body is not JSON, or nests too deep; a parameter of the wrong type",
    401: "no API key, or an unknown or revoked one",
    403: "the key's scopes do not allow this",
    404: "no such resource in this tenant",
    409: "a conflict with the resource's state",
    413: "the body is larger than SOPFLOW_MAX_BODY_BYTES",
    422: "invalid input, each problem with its field",
    503: "a dependency is unavailable; retry after Retry-After seconds",
}

_WRITES = ("post", "put", "patch", "delete")


def _problem(status: int) -> OpenAPIResponse:
    headers = None
    if status == 503:
        headers = {
            "Retry-After": OpenAPIHeader(schema=Schema(type=OpenAPIType.INTEGER), description="seconds")
        }
    return OpenAPIResponse(
        description=_WHY[status],
        headers=headers,
        content={PROBLEM_JSON: OpenAPIMediaType(schema=Reference(ref="#/components/schemas/Problem"))},
    )


def _statuses(path: str, method: str) -> list[int]:
    if path.startswith("/plugins/"):  # the plugin answers; core adds its scope and size checks
        return [403, 413] if method in _WRITES else [403]
    if path == "/health":
        return [503]
    if not path.startswith("/api/"):
        return []
    statuses = [400, 401, 403, 422, 503]
    if method in _WRITES:
        statuses += [409, 413]
    if "{" in path:
        statuses.append(404)
    return sorted(statuses)


def _public(path: str) -> bool:
    return path in ("/health", "/metrics") or path.startswith(("/plugins/", "/schema"))


def document_problems(schema: OpenAPI) -> None:
    """Add the problem responses (and ``security: []`` where no key is needed) to
    every operation of ``schema``, in place; state that request bodies take no
    keys beyond their properties (every body struct forbids unknown fields)."""
    components = schema.components
    for body in (components.schemas or {}).values():
        if isinstance(body, Schema) and body.properties and body.additional_properties is None:
            body.additional_properties = False
    components.schemas = {**(components.schemas or {}), "Problem": _PROBLEM}
    for path, item in (schema.paths or {}).items():
        for method in ("get", "post", "put", "patch", "delete"):
            operation: Operation | None = getattr(item, method, None)
            if operation is None:
                continue
            responses = operation.responses = dict(operation.responses or {})
            for status in _statuses(path, method):  # replaces Litestar's application/json 400
                responses[str(status)] = _problem(status)
            if _public(path):
                operation.security = []

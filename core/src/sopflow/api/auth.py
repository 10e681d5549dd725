"""Bearer-key authentication and scope checks.

Scopes: ``admin`` (everything in its tenant), ``read`` (GET), ``ingest``
(``POST /api/v1/events`` only).  Every query downstream is scoped by the
key's ``tenant_id``; nothing takes a tenant id from the request.
"""

from __future__ import annotations

import attrs
from litestar import Request

from sopflow.app import SopflowApp
from sopflow.engine.customers.tenants import authenticate
from sopflow.errors import Forbidden, Unauthorized


@attrs.frozen
class Auth:
    key_id: int
    tenant_id: int
    scopes: frozenset[str]

    def require(self, scope: str) -> None:
        if "admin" in self.scopes or scope in self.scopes:
            return
        raise Forbidden(
            f"this API key has scopes {sorted(self.scopes)}; this operation needs '{scope}'. "
            "Create a key with that scope (POST /api/v1/api-keys with an admin key)"
        )


def sopflow_app(request: Request) -> SopflowApp:
    return request.app.state.sopflow


def provide_auth(request: Request) -> Auth:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized(
            "send 'Authorization: Bearer <api key>'; create a key with `sopflow tenants create NAME`"
        )
    app = sopflow_app(request)
    with app.tx() as session:
        key = authenticate(session, token.strip())
    if key is None:
        raise Unauthorized("the API key is unknown or revoked; check the key or create a new one")
    return Auth(key.id, key.tenant_id, frozenset(key.scopes.split(",")))

"""Bearer-key authentication and scope checks.

Scopes: ``admin`` (everything in its tenant), ``read`` (GET), ``ingest``
(``POST /api/v1/events`` only).  Every query downstream is scoped by the
key's ``tenant_id``; nothing takes a tenant id from the request.

A route states its scope as a guard (``guards=[needs("read")]``): Litestar runs
guards before it parses a body, so a key of too small a scope gets 403 whatever
it sends, never a 422 that tells it about a body it may not send.
"""

from __future__ import annotations

import hmac
import os
from collections.abc import Callable
from typing import Any

import attrs
from litestar import Request
from litestar.connection import ASGIConnection

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


def provide_auth(request: Request) -> Auth:
    """The request's key (looked up once: the guard and the handler share it)."""
    return _authenticated(request)


def needs(scope: str) -> Callable[[ASGIConnection, Any], None]:
    """A guard: the request's key must hold ``scope`` (or ``admin``)."""

    def guard(connection: ASGIConnection, _handler: Any) -> None:
        _authenticated(connection).require(scope)

    guard.__name__ = f"needs_{scope}"
    return guard


def operator_only(connection: ASGIConnection, _handler: Any) -> None:
    """A guard: the request carries the operator token (tenant creation)."""
    given = connection.headers.get("authorization", "")
    scheme, _, token = given.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized(
            "creating tenants needs 'Authorization: Bearer <SOPFLOW_OPERATOR_TOKEN>'; "
            "or use `sopflow tenants create NAME` on the server"
        )
    expected = os.environ.get("SOPFLOW_OPERATOR_TOKEN", "")
    if not expected or not hmac.compare_digest(token.strip().encode(), expected.encode()):
        raise Forbidden(
            "that is not the operator token (SOPFLOW_OPERATOR_TOKEN; tenant creation over HTTP is off "
            "when it is unset); or use `sopflow tenants create NAME` on the server"
        )


def _authenticated(connection: ASGIConnection) -> Auth:
    cached = connection.state.get("sopflow_auth")
    if cached is None:
        cached = connection.state["sopflow_auth"] = _lookup(connection)
    return cached


def _lookup(request: ASGIConnection) -> Auth:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized(
            "send 'Authorization: Bearer <api key>'; create a key with `sopflow tenants create NAME`"
        )
    app: SopflowApp = request.app.state.sopflow
    with app.read() as session:
        key = authenticate(session, token.strip())
    if key is None:
        raise Unauthorized("the API key is unknown or revoked; check the key or create a new one")
    return Auth(key.id, key.tenant_id, frozenset(key.scopes.split(",")))

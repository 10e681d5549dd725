"""The caller's tenant, its API keys, and tenant creation (operator token)."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from litestar import Controller, Request, delete, get, patch, post
from litestar.di import NamedDependency
from litestar.params import JSONBody

from sopflow.api.auth import Auth, needs, operator_only, sopflow_app
from sopflow.api.params import Id
from sopflow.api.schemas import ApiKeyCreate, TenantCreate, TenantUpdate
from sopflow.engine.customers.tenants import check_timezone, create_tenant, issue_api_key
from sopflow.engine.delivery.claim import DEFAULT_DAILY_CAP
from sopflow.errors import InvalidInput, NotFound
from sopflow.models import ApiKey, Tenant

#: Bounds on the per-customer daily cap of pushed messages (WeCom allows one mass
#: message per customer per day; other channels may allow a few more).
MAX_DAILY_PUSH_CAP = 20


def tenant_to_dict(t: Tenant) -> dict[str, Any]:
    return {
        "id": t.id,
        "name": t.name,
        "timezone": t.timezone,
        "customer_daily_push_cap": (t.settings or {}).get("customer_daily_push_cap", DEFAULT_DAILY_CAP),
        "created_at": t.created_at.isoformat(),
    }


def key_to_dict(k: ApiKey) -> dict[str, Any]:
    return {
        "id": k.id,
        "name": k.name,
        "prefix": k.prefix,
        "scopes": k.scopes.split(","),
        "created_at": k.created_at.isoformat(),
        "revoked_at": k.revoked_at.isoformat() if k.revoked_at else None,
    }


class TenantController(Controller):
    path = "/api/v1/tenants"
    tags = ["tenants"]

    @get("/current", sync_to_thread=True, summary="The tenant of the calling key", guards=[needs("read")])
    def current(self, request: Request, auth: NamedDependency[Auth]) -> dict[str, Any]:
        with sopflow_app(request).read() as s:
            return tenant_to_dict(s.get(Tenant, auth.tenant_id))  # type: ignore[arg-type]

    @patch(
        "/current",
        sync_to_thread=True,
        summary="Change the tenant's default time zone and per-customer daily push cap",
        guards=[needs("admin")],
    )
    def update(
        self, request: Request, auth: NamedDependency[Auth], data: JSONBody[TenantUpdate]
    ) -> dict[str, Any]:
        with sopflow_app(request).tx() as s:
            tenant = s.get(Tenant, auth.tenant_id)
            assert tenant is not None
            cap = data.customer_daily_push_cap
            if cap is not None and not 1 <= cap <= MAX_DAILY_PUSH_CAP:
                raise InvalidInput(
                    [
                        (
                            "customer_daily_push_cap",
                            f"{cap} is out of range; give 1–{MAX_DAILY_PUSH_CAP} pushed messages per "
                            "customer per day (WeCom mass sends allow 1)",
                        )
                    ]
                )
            if data.timezone is not None:
                tenant.timezone = check_timezone(data.timezone)
            if cap is not None:
                tenant.settings = {**(tenant.settings or {}), "customer_daily_push_cap": cap}
            return tenant_to_dict(tenant)

    @post(
        "/",
        sync_to_thread=True,
        summary="Create a tenant (needs the operator token, SOPFLOW_OPERATOR_TOKEN)",
        guards=[operator_only],
    )
    def create(self, request: Request, data: JSONBody[TenantCreate]) -> dict[str, Any]:
        app = sopflow_app(request)
        with app.tx() as s:
            tenant = create_tenant(s, data.name, app.now(), data.timezone)
            _, token = issue_api_key(s, tenant.id, ["admin"], app.now(), name="initial admin key")
            return {**tenant_to_dict(tenant), "api_key": token}


class ApiKeyController(Controller):
    path = "/api/v1/api-keys"
    tags = ["api-keys"]

    @get(
        "/",
        sync_to_thread=True,
        summary="List the tenant's API keys (never the keys themselves)",
        guards=[needs("admin")],
    )
    def list_keys(self, request: Request, auth: NamedDependency[Auth]) -> list[dict[str, Any]]:
        with sopflow_app(request).read() as s:
            rows = s.scalars(sa.select(ApiKey).where(ApiKey.tenant_id == auth.tenant_id).order_by(ApiKey.id))
            return [key_to_dict(k) for k in rows]

    @post(
        "/", sync_to_thread=True, summary="Create a key; the response shows it once", guards=[needs("admin")]
    )
    def create_key(
        self, request: Request, auth: NamedDependency[Auth], data: JSONBody[ApiKeyCreate]
    ) -> dict[str, Any]:
        app = sopflow_app(request)
        with app.tx() as s:
            key, token = issue_api_key(s, auth.tenant_id, data.scopes, app.now(), data.name)
            return {**key_to_dict(key), "api_key": token}

    @delete("/{key_id:int}", sync_to_thread=True, summary="Revoke a key", guards=[needs("admin")])
    def revoke(self, request: Request, auth: NamedDependency[Auth], key_id: Id) -> None:
        app = sopflow_app(request)
        with app.tx() as s:
            key = s.scalar(sa.select(ApiKey).where(ApiKey.id == key_id, ApiKey.tenant_id == auth.tenant_id))
            if key is None:
                raise NotFound("api key", key_id)
            key.revoked_at = key.revoked_at or app.now()

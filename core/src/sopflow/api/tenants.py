"""The caller's tenant, its API keys, and tenant creation (operator token)."""

from __future__ import annotations

from litestar import Controller, delete, get, patch, post
from litestar.di import NamedDependency
from litestar.params import JSONBody

from sopflow.api.auth import Auth, needs, operator_only
from sopflow.api.params import Id
from sopflow.api.responses import shape
from sopflow.api.responses.tenants import ApiKeyOut, NewApiKeyOut, NewTenantOut, TenantOut
from sopflow.api.schemas import ApiKeyCreate, TenantCreate, TenantUpdate
from sopflow.app import SopflowApp
from sopflow.db import Session
from sopflow.engine.customers.tenants import create_tenant, issue_api_key, key_to_dict, list_keys, revoke_key
from sopflow.engine.delivery.tenant_settings import current_tenant, tenant_to_dict, update_tenant


class TenantController(Controller):
    path = "/api/v1/tenants"
    tags = ["tenants"]

    @get("/current", sync_to_thread=True, summary="The tenant of the calling key", guards=[needs("read")])
    def current(self, auth: NamedDependency[Auth], session: NamedDependency[Session]) -> TenantOut:
        return shape(TenantOut, current_tenant(session, auth.tenant_id))

    @patch(
        "/current",
        sync_to_thread=True,
        summary="Change the tenant's default time zone and per-customer daily push cap",
        guards=[needs("admin")],
    )
    def update(
        self, auth: NamedDependency[Auth], session: NamedDependency[Session], data: JSONBody[TenantUpdate]
    ) -> TenantOut:
        return shape(
            TenantOut, update_tenant(session, auth.tenant_id, data.timezone, data.customer_daily_push_cap)
        )

    @post(
        "/",
        sync_to_thread=True,
        summary="Create a tenant (needs the operator token, SOPFLOW_OPERATOR_TOKEN)",
        guards=[operator_only],
    )
    def create(
        self,
        sopflow: NamedDependency[SopflowApp],
        session: NamedDependency[Session],
        data: JSONBody[TenantCreate],
    ) -> NewTenantOut:
        tenant = create_tenant(session, data.name, sopflow.now(), data.timezone)
        _, token = issue_api_key(session, tenant.id, ["admin"], sopflow.now(), name="initial admin key")
        return shape(NewTenantOut, {**tenant_to_dict(tenant), "api_key": token})


class ApiKeyController(Controller):
    path = "/api/v1/api-keys"
    tags = ["api-keys"]

    @get(
        "/",
        sync_to_thread=True,
        summary="List the tenant's API keys (never the keys themselves)",
        guards=[needs("admin")],
    )
    def list_keys(self, auth: NamedDependency[Auth], session: NamedDependency[Session]) -> list[ApiKeyOut]:
        return shape(list[ApiKeyOut], list_keys(session, auth.tenant_id))

    @post(
        "/", sync_to_thread=True, summary="Create a key; the response shows it once", guards=[needs("admin")]
    )
    def create_key(
        self,
        sopflow: NamedDependency[SopflowApp],
        auth: NamedDependency[Auth],
        session: NamedDependency[Session],
        data: JSONBody[ApiKeyCreate],
    ) -> NewApiKeyOut:
        key, token = issue_api_key(session, auth.tenant_id, data.scopes, sopflow.now(), data.name)
        return shape(NewApiKeyOut, {**key_to_dict(key), "api_key": token})

    @delete("/{key_id:int}", sync_to_thread=True, summary="Revoke a key", guards=[needs("admin")])
    def revoke(
        self,
        sopflow: NamedDependency[SopflowApp],
        auth: NamedDependency[Auth],
        session: NamedDependency[Session],
        key_id: Id,
    ) -> None:
        revoke_key(session, auth.tenant_id, key_id, sopflow.now())

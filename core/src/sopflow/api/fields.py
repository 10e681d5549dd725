"""Customer field definitions: the tenant's own (editable) and plugins' (read-only)."""

from __future__ import annotations

from litestar import Controller, delete, get, patch, post
from litestar.di import NamedDependency
from litestar.params import JSONBody

from sopflow.api.auth import Auth, needs
from sopflow.api.responses import shape
from sopflow.api.responses.settings import FieldOut
from sopflow.api.schemas import FieldCreate, FieldUpdate
from sopflow.app import SopflowApp
from sopflow.db import Session
from sopflow.engine.customers.field_admin import delete_field, row_to_dict, update_field
from sopflow.engine.customers.fields import create_field_definition, field_definitions
from sopflow.errors import NotFound


class FieldController(Controller):
    path = "/api/v1/fields"
    tags = ["fields"]

    @get(
        "/",
        sync_to_thread=True,
        summary="All field definitions, the tenant's and plugins'",
        guards=[needs("read")],
    )
    def list_fields(
        self,
        sopflow: NamedDependency[SopflowApp],
        auth: NamedDependency[Auth],
        session: NamedDependency[Session],
    ) -> list[FieldOut]:
        defs = field_definitions(session, auth.tenant_id, sopflow.plugins)
        return shape(list[FieldOut], [d.to_dict() for d in defs.values()])

    @post("/", sync_to_thread=True, summary="Define a typed customer field", guards=[needs("admin")])
    def create(
        self,
        sopflow: NamedDependency[SopflowApp],
        auth: NamedDependency[Auth],
        session: NamedDependency[Session],
        data: JSONBody[FieldCreate],
    ) -> FieldOut:
        row = create_field_definition(
            session,
            auth.tenant_id,
            sopflow.plugins,
            sopflow.now(),
            key=data.key,
            type=data.type,
            label=data.label,
            choices=data.choices,
            description=data.description,
        )
        return shape(FieldOut, row_to_dict(row))

    @get("/{key:str}", sync_to_thread=True, summary="One field definition", guards=[needs("read")])
    def get_field(
        self,
        sopflow: NamedDependency[SopflowApp],
        auth: NamedDependency[Auth],
        session: NamedDependency[Session],
        key: str,
    ) -> FieldOut:
        defs = field_definitions(session, auth.tenant_id, sopflow.plugins)
        if key not in defs:
            raise NotFound("field", repr(key))
        return shape(FieldOut, defs[key].to_dict())

    @patch(
        "/{key:str}",
        sync_to_thread=True,
        summary="Change label/description, add choices",
        guards=[needs("admin")],
    )
    def update(
        self,
        sopflow: NamedDependency[SopflowApp],
        auth: NamedDependency[Auth],
        session: NamedDependency[Session],
        key: str,
        data: JSONBody[FieldUpdate],
    ) -> FieldOut:
        changed = update_field(
            session, auth.tenant_id, sopflow.plugins, key, data.label, data.description, data.add_choices
        )
        return shape(FieldOut, changed)

    @delete(
        "/{key:str}",
        sync_to_thread=True,
        summary="Delete a field no customer has a value for",
        guards=[needs("admin")],
    )
    def remove(
        self,
        sopflow: NamedDependency[SopflowApp],
        auth: NamedDependency[Auth],
        session: NamedDependency[Session],
        key: str,
    ) -> None:
        delete_field(session, auth.tenant_id, sopflow.plugins, key)

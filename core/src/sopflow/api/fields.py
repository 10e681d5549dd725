"""Customer field definitions: the tenant's own (editable) and plugins' (read-only)."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from litestar import Controller, Request, delete, get, patch, post
from litestar.di import NamedDependency
from litestar.params import JSONBody
from sqlalchemy.orm import Session

from sopflow.api.auth import Auth, needs, sopflow_app
from sopflow.api.schemas import FieldCreate, FieldUpdate
from sopflow.app import SopflowApp
from sopflow.engine.customers.fields import (
    FieldDef,
    create_field_definition,
    field_definitions,
    unknown_field_message,
)
from sopflow.errors import Conflict, InvalidInput, NotFound
from sopflow.models import Customer, FieldDefinition


class FieldController(Controller):
    path = "/api/v1/fields"
    tags = ["fields"]

    @get(
        "/",
        sync_to_thread=True,
        summary="All field definitions, the tenant's and plugins'",
        guards=[needs("read")],
    )
    def list_fields(self, request: Request, auth: NamedDependency[Auth]) -> list[dict[str, Any]]:
        app = sopflow_app(request)
        with app.read() as s:
            return [d.to_dict() for d in field_definitions(s, auth.tenant_id, app.plugins).values()]

    @post("/", sync_to_thread=True, summary="Define a typed customer field", guards=[needs("admin")])
    def create(
        self, request: Request, auth: NamedDependency[Auth], data: JSONBody[FieldCreate]
    ) -> dict[str, Any]:
        app = sopflow_app(request)
        with app.tx() as s:
            row = create_field_definition(
                s,
                auth.tenant_id,
                app.plugins,
                app.now(),
                key=data.key,
                type=data.type,
                label=data.label,
                choices=data.choices,
                description=data.description,
            )
            return FieldDef(row.key, row.type, row.label, tuple(row.choices), row.description).to_dict()

    @get("/{key:str}", sync_to_thread=True, summary="One field definition", guards=[needs("read")])
    def get_field(self, request: Request, auth: NamedDependency[Auth], key: str) -> dict[str, Any]:
        app = sopflow_app(request)
        with app.read() as s:
            defs = field_definitions(s, auth.tenant_id, app.plugins)
            if key not in defs:
                raise NotFound("field", repr(key))
            return defs[key].to_dict()

    @patch(
        "/{key:str}",
        sync_to_thread=True,
        summary="Change label/description, add choices",
        guards=[needs("admin")],
    )
    def update(
        self, request: Request, auth: NamedDependency[Auth], key: str, data: JSONBody[FieldUpdate]
    ) -> dict[str, Any]:
        app = sopflow_app(request)
        with app.tx() as s:
            row = self._own(s, auth, app, key)
            if data.label is not None:
                row.label = data.label
            if data.description is not None:
                row.description = data.description
            if data.add_choices:
                if row.type not in ("choice", "multi_choice"):
                    raise InvalidInput(
                        [("add_choices", f"field {key!r} is {row.type}; only choice fields have choices")]
                    )
                row.choices = list(dict.fromkeys([*row.choices, *data.add_choices]))
            return FieldDef(row.key, row.type, row.label, tuple(row.choices), row.description).to_dict()

    @delete(
        "/{key:str}",
        sync_to_thread=True,
        summary="Delete a field no customer has a value for",
        guards=[needs("admin")],
    )
    def remove(self, request: Request, auth: NamedDependency[Auth], key: str) -> None:
        app = sopflow_app(request)
        with app.tx() as s:
            row = self._own(s, auth, app, key)
            used = s.scalar(
                sa.select(sa.func.count())
                .select_from(Customer)
                .where(Customer.tenant_id == auth.tenant_id, Customer.fields[key].as_string().is_not(None))
            )
            if used:
                raise Conflict(f"{used} customers have a value for {key!r}; clear the values first")
            s.delete(row)

    @staticmethod
    def _own(s: Session, auth: NamedDependency[Auth], app: SopflowApp, key: str) -> FieldDefinition:
        row = s.scalar(
            sa.select(FieldDefinition).where(
                FieldDefinition.tenant_id == auth.tenant_id, FieldDefinition.key == key
            )
        )
        if row is None:
            defs = field_definitions(s, auth.tenant_id, app.plugins)
            if key in defs:
                raise Conflict(f"field {key!r} belongs to plugin '{defs[key].plugin}' and is read-only")
            raise NotFound("field", f"{key!r} ({unknown_field_message(key, defs)})")
        return row

"""The tenant's own field definitions as the API changes them (plugins' fields are read-only)."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from sopflow.engine.customers.fields import FieldDef, field_definitions, unknown_field_message
from sopflow.errors import Conflict, InvalidInput, NotFound
from sopflow.models import Customer, FieldDefinition
from sopflow.plugins import PluginSystem


def row_to_dict(row: FieldDefinition) -> dict[str, Any]:
    """A tenant's field definition as the API shows it."""
    return FieldDef(row.key, row.type, row.label, tuple(row.choices), row.description).to_dict()


def own_field(session: Session, tenant_id: int, plugins: PluginSystem, key: str) -> FieldDefinition:
    """The tenant's own field ``key``: ``Conflict`` for a plugin's, ``NotFound`` otherwise."""
    row = session.scalar(
        sa.select(FieldDefinition).where(FieldDefinition.tenant_id == tenant_id, FieldDefinition.key == key)
    )
    if row is None:
        defs = field_definitions(session, tenant_id, plugins)
        if key in defs:
            raise Conflict(f"field {key!r} belongs to plugin '{defs[key].plugin}' and is read-only")
        raise NotFound("field", f"{key!r} ({unknown_field_message(key, defs)})")
    return row


def update_field(
    session: Session,
    tenant_id: int,
    plugins: PluginSystem,
    key: str,
    label: str | None,
    description: str | None,
    add_choices: list[str],
) -> dict[str, Any]:
    """Change a field's label or description (None: unchanged), add choices to a choice field."""
    row = own_field(session, tenant_id, plugins, key)
    if label is not None:
        row.label = label
    if description is not None:
        row.description = description
    if add_choices:
        if row.type not in ("choice", "multi_choice"):
            raise InvalidInput(
                [("add_choices", f"field {key!r} is {row.type}; only choice fields have choices")]
            )
        row.choices = list(dict.fromkeys([*row.choices, *add_choices]))
    return row_to_dict(row)


def delete_field(session: Session, tenant_id: int, plugins: PluginSystem, key: str) -> None:
    """Delete a field no customer has a value for (``Conflict`` while one has)."""
    row = own_field(session, tenant_id, plugins, key)
    used = session.scalar(
        sa.select(sa.func.count())
        .select_from(Customer)
        .where(Customer.tenant_id == tenant_id, Customer.fields[key].as_string().is_not(None))
    )
    if used:
        raise Conflict(f"{used} customers have a value for {key!r}; clear the values first")
    session.delete(row)

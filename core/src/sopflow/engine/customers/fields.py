"""Field definitions (the tenant's own plus those plugins contribute) and the
validation of field writes against them.

Stored formats, the ones the rule compiler compares on: text and choice as
strings, number as a JSON number, bool as true/false, date as ``YYYY-MM-DD``,
datetime as ISO-8601 in UTC (``…+00:00``), multi-choice as a list of strings.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import attrs
import sqlalchemy as sa
from sopflow_sdk import FIELD_TYPES
from sqlalchemy.orm import Session

from sopflow.conditions import storage
from sopflow.config_cache import cached
from sopflow.errors import Conflict, InvalidInput
from sopflow.models import FieldDefinition
from sopflow.plugins import PluginSystem

#: A field key (the API states it in its schema; the engine checks it for plugins too).
FIELD_KEY_PATTERN = "^[a-z][a-z0-9_]{0,62}$"
KEY_PATTERN = re.compile(FIELD_KEY_PATTERN)
MAX_CHOICES = 200


@attrs.frozen
class FieldDef:
    """A customer field as the engine sees it: a plugin's (``plugin`` set, read-only
    through the API) or one the tenant defined."""

    key: str
    type: str
    label: str = ""
    choices: tuple[str, ...] = ()
    description: str = ""
    plugin: str | None = None

    @property
    def read_only(self) -> bool:
        """A plugin's field is written only by that plugin, never through the API."""
        return self.plugin is not None

    def to_dict(self) -> dict[str, Any]:
        """The field as the API shows it."""
        return {
            "key": self.key,
            "type": self.type,
            "label": self.label,
            "choices": list(self.choices),
            "description": self.description,
            "plugin": self.plugin,
            "read_only": self.read_only,
        }


def field_definitions(session: Session, tenant_id: int, plugins: PluginSystem) -> dict[str, FieldDef]:
    """Every field a tenant's customers may have, by key: the plugins' fields,
    then the tenant's own (a tenant's definition wins a clash of keys).  A copy of
    the tenant's cached definitions: the caller may change it."""
    return dict(cached(session, tenant_id, "fields", lambda: _load_fields(session, tenant_id, plugins)))


def _load_fields(session: Session, tenant_id: int, plugins: PluginSystem) -> dict[str, FieldDef]:
    defs = {
        r.spec.key: FieldDef(
            r.spec.key, r.spec.type, r.spec.label, tuple(r.spec.choices), r.spec.description, r.plugin
        )
        for r in plugins.registry.all("register_fields")
    }
    rows = session.scalars(sa.select(FieldDefinition).where(FieldDefinition.tenant_id == tenant_id))
    for row in rows:
        defs[row.key] = FieldDef(row.key, row.type, row.label, tuple(row.choices), row.description)
    return defs


def create_field_definition(
    session: Session,
    tenant_id: int,
    plugins: PluginSystem,
    now: datetime,
    *,
    key: str,
    type: str,
    label: str = "",
    choices: list[str] | None = None,
    description: str = "",
) -> FieldDefinition:
    """Define a tenant field; ``InvalidInput`` lists every problem (key
    pattern, type, choices, a key a plugin already owns), ``Conflict`` when the
    tenant already has the key."""
    problems: list[tuple[str, str]] = []
    if not KEY_PATTERN.fullmatch(key or ""):
        problems.append(("key", f"{key!r}: use lower_snake_case, 1–63 characters, starting with a letter"))
    if type not in FIELD_TYPES:
        problems.append(("type", f"{type!r} is not a field type; use one of {', '.join(FIELD_TYPES)}"))
    choices = list(choices or [])
    if type in ("choice", "multi_choice"):
        if not choices:
            problems.append(("choices", f"a {type} field needs at least one choice"))
        if len(choices) > MAX_CHOICES:
            problems.append(("choices", f"at most {MAX_CHOICES} choices"))
        if any(not isinstance(c, str) or not c for c in choices) or len(set(choices)) != len(choices):
            problems.append(("choices", "choices must be distinct non-empty strings"))
    elif choices:
        problems.append(("choices", f"only choice and multi_choice fields take choices, not {type}"))
    if problems:
        raise InvalidInput(problems)
    existing = field_definitions(session, tenant_id, plugins).get(key)
    if existing is not None:
        owner = f"plugin '{existing.plugin}'" if existing.plugin else "this tenant"
        raise Conflict(f"field {key!r} is already defined by {owner}; choose another key")
    row = FieldDefinition(
        tenant_id=tenant_id,
        key=key,
        type=type,
        label=label,
        choices=choices,
        description=description,
        created_at=now,
    )
    session.add(row)
    session.flush()
    return row


def unknown_field_message(key: str, defs: Mapping[str, FieldDef]) -> str:
    """The error for a field key nobody defined, with the closest known key as
    a hint (else how to define it)."""
    close = difflib.get_close_matches(key, list(defs), n=1)
    hint = f" — did you mean {close[0]!r}?" if close else " — define it with POST /api/v1/fields"
    return f"unknown field {key!r}{hint}"


def to_storage(defn: FieldDef, value: Any) -> Any:
    """``value``'s stored form for the field ``defn`` (the rules are
    ``sopflow.conditions.storage.to_storage``'s).  ``None`` clears the value."""
    return storage.to_storage(defn.type, value, defn.choices)


def validate_field_changes(
    changes: Mapping[str, Any],
    defs: Mapping[str, FieldDef],
    path: str = "fields",
    *,
    allow_read_only: bool = False,
) -> tuple[dict[str, Any], list[tuple[str, str]]]:
    """Return (stored values, problems).  Collects every problem at once."""
    stored: dict[str, Any] = {}
    problems: list[tuple[str, str]] = []
    if not isinstance(changes, Mapping):
        return {}, [(path, "expected an object of field key → value")]
    for key, value in changes.items():
        defn = defs.get(key)
        where = f"{path}.{key}"
        if defn is None:
            problems.append((where, unknown_field_message(key, defs)))
            continue
        if defn.read_only and not allow_read_only:
            problems.append(
                (where, f"field {key!r} is maintained by plugin '{defn.plugin}' and is read-only")
            )
            continue
        try:
            stored[key] = to_storage(defn, value)
        except ValueError as exc:
            problems.append((where, f"{exc} (field {key!r} is {defn.type})"))
    return stored, problems


def apply_stored(current: Mapping[str, Any], stored: Mapping[str, Any]) -> dict[str, Any]:
    """Merge validated values into a customer's field map; ``None`` removes a key."""
    merged = dict(current)
    for key, value in stored.items():
        if value is None:
            merged.pop(key, None)
        else:
            merged[key] = value
    return merged

"""A form's text as the customer's values: a field's text turned into its type's
value (so the engine validates exactly as it does for the API) and the tags typed
as what to add and remove.  The console's customer page and the host's
``edit_customer`` (the WeCom sidebar's edit form) both use it."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

NUMBER = re.compile(r"^-?\d+(\.\d+)?$")


def typed_value(field_type: str, raw: str) -> Any:
    """The JSON value a form's text stands for; text that is not one is passed
    on as typed, so the engine's own check names the field and the fix."""
    text = raw.strip()
    if text == "":
        return None
    if field_type == "number" and NUMBER.match(text):
        return float(text) if "." in text else int(text)
    if field_type == "bool" and text in ("true", "false"):
        return text == "true"
    if field_type == "multi_choice":
        return [part.strip() for part in text.split(",") if part.strip()]
    return text


def field_changes(
    form: Mapping[str, str], defs: Mapping[str, Any], current: Mapping[str, Any]
) -> dict[str, Any]:
    """``{key: value}`` for the ``field.<key>`` inputs whose value differs from the stored one."""
    changes: dict[str, Any] = {}
    for key, definition in defs.items():
        name = f"field.{key}"
        if name not in form:
            continue
        value = typed_value(definition.type, form[name])
        if value != current.get(key):
            changes[key] = value
    return changes


def tag_changes(typed: str, current: list[str]) -> tuple[list[str], list[str]]:
    """``(added, removed)`` from the comma-separated tags typed."""
    wanted = [t.strip() for t in typed.split(",") if t.strip()]
    return [t for t in wanted if t not in current], [t for t in current if t not in wanted]

"""No NUL character anywhere, stated in the OpenAPI document.

Postgres cannot store a NUL (``\\u0000``) in text or JSONB, so every JSON body
is refused when one of its keys or strings holds one (api/strict_body.py).  The
document says so: every string schema without a pattern of its own gets the
pattern ``^[^\\u0000]*$``, and every free part (an object of any keys, a value
of any type) refers to ``JsonObject`` / ``JsonValue``, any JSON without a NUL.
"""

from __future__ import annotations

from typing import Any

from sopflow.conditions.schema import ref

#: a JSON Schema pattern (ECMA regex, as the document holds it): no NUL character; the
#: same set as the rule language's ``conditions.schema.NO_NUL``, spelled as JSON spells it
NO_NUL = "^[^\\u0000]*$"
JSON_VALUE, JSON_OBJECT = "JsonValue", "JsonObject"

#: Body properties that take a free JSON document.
FREE_PROPERTIES: dict[str, tuple[str, ...]] = {
    "EventIn": ("payload",),
    "ChannelAccountCreate": ("config",),
    "ChannelAccountUpdate": ("config",),
}
#: keywords whose value is one subschema, a list of them, or a map of them
_ONE = ("additionalProperties", "items", "not", "if", "then", "else", "propertyNames", "contains")
_MANY = ("anyOf", "oneOf", "allOf", "prefixItems")
_MAP = ("properties", "patternProperties", "$defs", "dependentSchemas")
#: what an any-value schema may hold besides nothing
_ANNOTATIONS = {"description", "title", "examples", "default"}


def no_nul_components(components: dict[str, Any]) -> None:
    """Add ``JsonValue``/``JsonObject``, point the free-document properties at
    ``JsonObject`` and state no NUL on every schema of ``components``."""
    components[JSON_VALUE] = {
        "anyOf": [
            {"type": "string", "pattern": NO_NUL},
            {"type": ["number", "boolean", "null"]},
            {"type": "array", "items": ref(JSON_VALUE)},
            ref(JSON_OBJECT),
        ]
    }
    components[JSON_OBJECT] = {
        "type": "object",
        "description": "any JSON object; no key or string may hold a NUL character (\\u0000)",
        "propertyNames": {"pattern": NO_NUL},
        "additionalProperties": ref(JSON_VALUE),
    }
    for body, keys in FREE_PROPERTIES.items():
        for key in keys:
            stated = components[body]["properties"][key]
            nullable = any(part.get("type") == "null" for part in stated.get("anyOf", ()))
            said = [stated, *stated.get("anyOf", ())]
            shown = next(({"description": d} for part in said if (d := part.get("description"))), {})
            free = [ref(JSON_OBJECT), {"type": "null"}] if nullable else [ref(JSON_OBJECT)]
            components[body]["properties"][key] = {"anyOf" if nullable else "allOf": free, **shown}
    for name, schema in components.items():
        if name not in (JSON_VALUE, JSON_OBJECT) and isinstance(schema, dict):
            _no_nul(schema)


def _no_nul(schema: Any) -> None:
    if not isinstance(schema, dict):
        return
    kind = schema.get("type")
    if not schema.keys() - _ANNOTATIONS:
        schema.update(ref(JSON_VALUE))  # any value
        return
    if kind == "string" and not {"pattern", "enum", "const"} & schema.keys():
        schema["pattern"] = NO_NUL
    if (kind == "object" or "properties" in schema) and "$ref" not in schema:
        extra = schema.get("additionalProperties", True)
        if extra is True or extra == {}:  # keys beyond those named take any value
            schema["additionalProperties"] = ref(JSON_VALUE)
        schema.setdefault("propertyNames", {"pattern": NO_NUL})
    for key in _ONE:
        _no_nul(schema.get(key))
    for key in _MANY:
        for part in schema.get(key) or ():
            _no_nul(part)
    for key in _MAP:
        for part in (schema.get(key) or {}).values():
            _no_nul(part)

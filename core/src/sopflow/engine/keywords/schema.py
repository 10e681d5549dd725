"""A keyword rule's parts as JSON Schema, built from the parser's own limits.

:func:`sopflow.engine.keywords.rules.validate_rule` stays the one that decides
(every problem at once, with its path and fix: the API's Structs take the lists
as any lists so the parser sees them whole); this states their shape for the
OpenAPI document, and ``tests/test_journey_schema.py`` holds the two to agreeing.
What needs the tenant's rows is left to the parser and named in the
descriptions: a ``set_field`` action's field must be a writable field of the
tenant, and its value one of the field's type."""

from __future__ import annotations

from typing import Any

from sopflow.conditions.schema import NO_NUL, NOT_BLANK, SPACE
from sopflow.conditions.storage import MAX_EXACT_INT
from sopflow.conditions.storage import MAX_TEXT as MAX_FIELD_TEXT
from sopflow.engine.keywords.rules import MAX_ACTIONS, MAX_KEYWORD, MAX_KEYWORDS, MAX_NAME, MAX_TAG


def trimmed(most: int) -> str:
    """A regex for a text with no NUL that is not blank and at most ``most``
    characters once the whitespace around it is stripped (as the parser strips it)."""
    inner = f"[^\\x00{SPACE}]"
    return f"^[{SPACE}]*{inner}(?:[^\\x00]{{0,{most - 2}}}{inner})?[{SPACE}]*$"


_TEXT = {"type": "string", "maxLength": MAX_FIELD_TEXT, "pattern": NO_NUL}
#: a whole number within ±2**53 (a field's numbers are exact), or a fraction
_NUMBERS = (
    {"type": "integer", "minimum": -MAX_EXACT_INT, "maximum": MAX_EXACT_INT},
    {"type": "number", "not": {"type": "integer"}},
)


def _words(what: str, most: int) -> dict[str, Any]:
    return {
        "type": "string",
        "pattern": trimmed(most),
        "description": f"a {what} of 1 to {most} characters (the spaces around it are dropped)",
    }


def action_schema() -> dict[str, Any]:
    """``KeywordAction``: add or remove a tag, or set a field."""
    tag_cases = [
        {
            "type": "object",
            "required": ["type", "tag"],
            "properties": {"type": {"const": kind}, "tag": _words("tag", MAX_TAG)},
            "additionalProperties": False,
        }
        for kind in ("add_tag", "remove_tag")
    ]
    set_field = {
        "type": "object",
        "required": ["type", "field", "value"],
        "properties": {
            "type": {"const": "set_field"},
            "field": {
                "type": "string",
                "minLength": 1,
                "description": "the key of a writable field of this tenant (GET /api/v1/fields)",
            },
            "value": {
                "anyOf": [
                    _TEXT,
                    *_NUMBERS,
                    {"type": "boolean"},
                    {"type": "null"},
                    {"type": "array", "items": _TEXT},
                ],
                "description": "a value of the field's type (text, a number, true or false, a date or "
                "datetime as text, a list of choices); null clears it",
            },
        },
        "additionalProperties": False,
    }
    return {"oneOf": [*tag_cases, set_field], "description": "what a match does to the customer"}


def keyword_components() -> dict[str, dict[str, Any]]:
    """The components of a keyword rule's parts: its name, keywords and actions."""
    return {
        "KeywordAction": action_schema(),
        "KeywordList": {
            "type": "array",
            "minItems": 1,
            "maxItems": MAX_KEYWORDS,
            "items": _words("keyword", MAX_KEYWORD),
            "description": f"1 to {MAX_KEYWORDS} words to look for; repeats are dropped",
        },
        "KeywordActions": {
            "type": "array",
            "minItems": 1,
            "maxItems": MAX_ACTIONS,
            "items": {"$ref": "#/components/schemas/KeywordAction"},
        },
        "KeywordRuleName": {
            "type": "string",
            "maxLength": MAX_NAME,
            "pattern": NOT_BLANK,
            "description": f"a name unique in this tenant, 1 to {MAX_NAME} characters",
        },
    }

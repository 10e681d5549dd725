"""The rule language as JSON Schema, built from the parser's own limits.

The parser (:mod:`sopflow.conditions.parse`) stays the one that decides: it
lists every problem at once with its path, which a schema validator would not.
This module states the same shape for the OpenAPI document, so a client (and
the API fuzzer) knows what a rule may be without trying; the property tests in
``tests/conditions/test_rule_schema.py`` hold the two to agreeing.

What a schema cannot know is left to the parser and named in each part's
description: whether a field key is one of the tenant's fields and which ops and
values its type takes, whether a pipeline or a segment exists, and comparisons
between two values (``min`` above ``max``, a ``between`` low above its high).

The language nests (all/any/not of rules), so ``Rule`` refers to itself.  Two
bounds are stated in its description only: a schema's recursion cannot count
levels (``MAX_DEPTH``) or nodes (``MAX_NODES``), and unrolling one component per
level makes a document whose references a generator expands exponentially.
"""

from __future__ import annotations

from typing import Any

from sopflow.conditions.nodes import ALL_OPS, RELATIVE_OPS
from sopflow.conditions.parse import MAX_DEPTH, MAX_EVENT_COUNT, MAX_ID, MAX_LIST, MAX_NODES, TAG_MODES
from sopflow.conditions.storage import MAX_EXACT_INT
from sopflow.conditions.storage import MAX_TEXT as MAX_FIELD_TEXT
from sopflow.conditions.windows import DURATION_UNIT_MAX

REF = "#/components/schemas/{name}"
NO_NUL = "^[^\\x00]*$"
#: Not blank and no NUL (the server strips names, and Postgres text cannot hold a NUL).
#: Whitespace spelled out (str.isspace's set): JSON Schema's \\s is not Python's.
SPACE = "\\t\\n\\x0b\\x0c\\r\\x1c-\\x20\\x85\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000"
NOT_BLANK = f"^[^\\x00]*[^\\x00{SPACE}][^\\x00]*$"
#: how long a tag, a stage name, a source or an event type may be in a rule
MAX_TEXT = 100


def ref(name: str) -> dict[str, str]:
    """A ``$ref`` to one of the components below."""
    return {"$ref": REF.format(name=name)}


def upto_pattern(most: int) -> str:
    """A regex for the whole numbers 0 to ``most`` written without leading zeros:
    a JSON Schema pattern cannot compare numbers, so the bound is spelled out."""
    digits = str(most)
    options = ["0"]
    if len(digits) > 1:
        options.append(f"[1-9][0-9]{{0,{len(digits) - 2}}}")
    for i, d in enumerate(digits):
        low = "1" if i == 0 else "0"
        top = int(d) - 1
        if top < int(low):
            continue
        tail = len(digits) - i - 1
        options.append(digits[:i] + f"[{low}-{top}]" + (f"[0-9]{{{tail}}}" if tail else ""))
    options.append(digits)
    return "|".join(dict.fromkeys(options))


def duration_schema() -> dict[str, Any]:
    """``30d``: a whole number and a unit, at most 100 years."""
    options = [f"(?:{upto_pattern(most)}){unit}" for unit, most in DURATION_UNIT_MAX.items()]
    return {
        "type": "string",
        "pattern": "^(?:" + "|".join(options) + ")$",
        "description": "a whole number and a unit (m, h, d, w) of at most 100 years, e.g. '90m', '30d'; "
        "on a date field only d and w",
        "examples": ["30d"],
    }


def _texts(what: str) -> dict[str, Any]:
    return {
        "type": "array",
        "minItems": 1,
        "maxItems": MAX_LIST,
        "items": {"type": "string", "minLength": 1, "maxLength": MAX_TEXT, "pattern": NO_NUL},
        "description": f"1 to {MAX_LIST} {what}s, each 1 to {MAX_TEXT} characters",
    }


def _single(key: str, value: dict[str, Any], description: str) -> dict[str, Any]:
    """A node object of exactly one key."""
    return {
        "type": "object",
        "required": [key],
        "properties": {key: value},
        "additionalProperties": False,
        "description": description,
    }


#: a value a field can hold: text (a choice, a date, a datetime as text), a number, true or false
_TEXT = {"type": "string", "maxLength": MAX_FIELD_TEXT, "pattern": NO_NUL}
_NUMBER = {"type": "number", "minimum": -MAX_EXACT_INT, "maximum": MAX_EXACT_INT}
_NULL = {"type": "null"}
_SCALAR = {"anyOf": [_TEXT, _NUMBER, {"type": "boolean"}, _NULL], "description": "null: no value"}


def _list(item: dict[str, Any], least: int, most: int, nulls: bool = True) -> dict[str, Any]:
    items = {"anyOf": [item, _NULL]} if nulls else item
    return {"type": "array", "minItems": least, "maxItems": most, "items": items}


#: each op's operand, the part of it that does not depend on the field's type (a list's
#: values are of one type: texts, or numbers)
_OPERANDS: list[tuple[tuple[str, ...], dict[str, Any]]] = [
    (("exists",), {"type": "boolean"}),
    (RELATIVE_OPS, ref("RuleDuration")),
    (("in", "not_in"), {"anyOf": [_list(_TEXT, 1, MAX_LIST), _list(_NUMBER, 1, MAX_LIST)]}),
    (
        ("between",),
        {
            "anyOf": [_list(_TEXT, 2, 2, nulls=False), _list(_NUMBER, 2, 2, nulls=False)],
            "description": "[low, high], both inclusive, low not above high",
        },
    ),
    (("contains",), {**_TEXT, "minLength": 1}),
    (("lt", "lte", "gt", "gte"), {"anyOf": [_TEXT, _NUMBER, _NULL]}),
]


def field_schema() -> dict[str, Any]:
    """A field condition: ``{"field": "city", "op": "eq", "value": "Shanghai"}``."""
    listed = {op for ops, _ in _OPERANDS for op in ops}
    cases = [*_OPERANDS, (tuple(op for op in ALL_OPS if op not in listed), _SCALAR)]
    field = {
        "type": "string",
        "minLength": 1,
        "pattern": '^[^"\\\\]*$',
        "description": "the key of one of the tenant's fields (GET /api/v1/fields)",
    }
    return {
        "anyOf": [
            {
                "type": "object",
                "required": ["field", "op", "value"],
                "properties": {"field": field, "op": {"type": "string", "enum": list(ops)}, "value": value},
                "additionalProperties": False,
            }
            for ops, value in cases
        ],
        "description": "which ops apply, and what value, depends on the field's type: see docs/rules.md",
    }


def node_schema() -> dict[str, Any]:
    """A rule: a condition, or all/any/not of rules."""
    child = ref("Rule")
    group = {"type": "array", "minItems": 1, "items": child}
    names = ("RuleField", "RuleTags", "RuleStage", "RuleChurned", "RuleSource", "RuleEvents", "RuleSegment")
    return {
        "anyOf": [
            _single("all", group, "every condition holds"),
            _single("any", group, "at least one condition holds"),
            _single("not", child, "the condition does not hold"),
            *(ref(name) for name in names),
        ],
        "description": f"a rule: a condition, or all/any/not of rules, nested at most {MAX_DEPTH} "
        f"levels and at most {MAX_NODES} nodes in all (see docs/rules.md)",
    }


def rule_components() -> dict[str, dict[str, Any]]:
    """Every component of the rule language, keyed by name: ``Rule`` is the whole rule."""
    events = {
        "type": "object",
        "required": ["type"],
        "properties": {
            "type": {"type": "string", "minLength": 1, "maxLength": MAX_TEXT, "pattern": NO_NUL},
            "min": {"type": ["integer", "null"], "minimum": 0, "maximum": MAX_EVENT_COUNT},
            "max": {"type": ["integer", "null"], "minimum": 0, "maximum": MAX_EVENT_COUNT},
            "within": {"anyOf": [ref("RuleDuration"), {"type": "null"}]},
        },
        "additionalProperties": False,
        "description": "at least min (default 1, or 0 when max is given) and at most max events of "
        "type, within the window (all time without one); min may not be above max",
    }
    tag_modes = {
        "type": "object",
        "minProperties": 1,
        "maxProperties": 1,
        "properties": {mode: _texts("tag") for mode in TAG_MODES},
        "additionalProperties": False,
    }
    stage = {
        "type": "object",
        "required": ["pipeline_id", "in"],
        "properties": {
            "pipeline_id": {"type": "integer", "minimum": 1, "maximum": MAX_ID},
            "in": _texts("stage name"),
        },
        "additionalProperties": False,
    }
    identifier = {"type": "integer", "minimum": 1, "maximum": MAX_ID}
    out: dict[str, dict[str, Any]] = {
        "RuleDuration": duration_schema(),
        "RuleField": field_schema(),
        "RuleTags": _single("tags", tag_modes, "the customer's tags: any_of, all_of or none_of a list"),
        "RuleStage": _single("stage", stage, "the customer's stage in a pipeline is one of these"),
        "RuleChurned": _single("churned", {"type": "boolean"}, "whether the customer has left"),
        "RuleSource": _single(
            "source",
            {
                "type": "object",
                "required": ["in"],
                "properties": {"in": _texts("source")},
                "additionalProperties": False,
            },
            "where the customer came from is one of these",
        ),
        "RuleEvents": _single("events", events, "how many events of a type the customer has"),
        "RuleSegment": _single(
            "segment", identifier, "a saved segment's rule, by its id (GET /api/v1/segments)"
        ),
    }
    out["Rule"] = node_schema()
    return out

"""The rule language's JSON Schema (conditions/schema.py) agrees with its parser.

Rules are drawn from the schema with the generator schemathesis fuzzes the API
with, and the parser accepts each one; rules the parser accepts (drawn ones,
mutated) the schema accepts too.  What the schema says it cannot know is given
to the parser: each field condition gets a field of a type that fits it (its
own key, so two conditions never disagree on one field's type), a segment
reference is replaced by a condition (the engine expands it from the tenant's
rows), and only the comparisons a schema cannot state (min above max, low above
high) may still be refused."""

from __future__ import annotations

from typing import Any, NamedTuple

import jsonschema_rs
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from schemathesis.generation.jsonschema.builder import build
from sopflow.conditions import FIELD_OPS, MAX_DEPTH, MAX_NODES, RuleError, parse
from sopflow.conditions.parse import MAX_ID, whole_number
from sopflow.conditions.schema import rule_components, upto_pattern

from tests.schema_support import JSON, mutate, places

pytestmark = pytest.mark.sqlite_pass  # schema against parser: no database

COMPONENTS = rule_components()
DOCUMENT = {"$ref": "#/components/schemas/Rule", "components": {"schemas": COMPONENTS}}
VALIDATOR = jsonschema_rs.Draft202012Validator(DOCUMENT)
RULES = build(DOCUMENT, draft=jsonschema_rs.Draft202012, formats={})
#: what a schema cannot compare: one value against another
COMPARISONS = ("nothing can match", "; swap them")


class Field(NamedTuple):
    type: str
    choices: tuple[str, ...]


def _strings(value: Any) -> tuple[str, ...]:
    items = value if isinstance(value, list) else [value]
    return tuple(v for v in items if isinstance(v, str))


def _fitting(condition: dict[str, Any]) -> Field | None:
    """A field type under which the parser takes this one condition, if any."""
    for ftype in FIELD_OPS:
        field = Field(ftype, _strings(condition.get("value")))
        try:
            parse({**condition, "field": "f"}, {"f": field})
        except RuleError as exc:
            if all(any(c in m for c in COMPARISONS) for _, m in exc.problems):
                return field
            continue
        return field
    return None


def _with_rows(rule: Any, fields: dict[str, Any]) -> Any:
    """``rule`` as the engine would hand it to the parser, ``fields`` filled in;
    None when a field condition fits no type."""
    if isinstance(rule, list):
        out = [_with_rows(r, fields) for r in rule]
        return None if any(r is None for r in out) else out
    if not isinstance(rule, dict):
        return rule
    if set(rule) == {"segment"}:  # expanded by the engine: an id, else the segment's 422
        sid = rule["segment"]
        valid = whole_number(sid) is not None and 1 <= sid <= MAX_ID
        return {"churned": True} if valid else None
    if "field" in rule and isinstance(rule.get("field"), str) and "op" in rule:
        field = _fitting(rule)
        if field is None:
            return None
        key = f"f{len(fields)}"
        fields[key] = field
        return {**rule, "field": key}
    out = {k: _with_rows(v, fields) for k, v in rule.items()}
    return None if any(v is None for k, v in out.items() if rule[k] is not None) else out


def _parser_accepts(rule: Any) -> bool:
    fields: dict[str, Any] = {}
    prepared = _with_rows(rule, fields)
    if prepared is None:
        return False
    try:
        parse(prepared, fields)
    except RuleError as exc:
        return all(any(c in m for c in COMPARISONS) for _, m in exc.problems)
    return True


def _depth(rule: Any) -> int:
    if isinstance(rule, dict):
        kids = rule.get("all") or rule.get("any") or ([rule["not"]] if "not" in rule else [])
        return 1 + max((_depth(k) for k in kids), default=0) if isinstance(kids, list) else 1
    return 0


def _bounded(rule: Any) -> bool:
    """Within the bounds the schema states in its description only."""
    return _nodes(rule) <= MAX_NODES and _depth(rule) <= MAX_DEPTH + 1


def _nodes(rule: Any) -> int:
    if isinstance(rule, dict):
        kids = rule.get("all") or rule.get("any") or ([rule["not"]] if "not" in rule else [])
        return 1 + sum(_nodes(k) for k in kids if isinstance(kids, list)) if isinstance(kids, list) else 1
    return 0


SETTINGS = settings(
    max_examples=150, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck)
)


@SETTINGS
@given(RULES)
def test_every_rule_the_schema_allows_the_parser_accepts(rule):
    assume(_bounded(rule))
    assert _parser_accepts(rule), rule


@SETTINGS
@given(RULES, st.data())
def test_every_rule_the_parser_accepts_the_schema_allows(rule, data):
    """Rules one change away from a valid one: where the parser still takes the
    changed rule, the schema allows it (the schema is no stricter than the parser)."""
    at = data.draw(st.sampled_from(places(rule)))
    how = data.draw(st.sampled_from(["replace", "drop", "add"])) if at else "replace"
    mutant = mutate(rule, at, how, data.draw(JSON))
    assume(_bounded(mutant))
    if _parser_accepts(mutant):
        assert VALIDATOR.is_valid(mutant), mutant


@pytest.mark.parametrize(
    "rule",
    [
        {"all": [{"not": {"tags": {"any_of": ["vip"]}}}, {"churned": False}]},
        {"field": "city", "op": "in", "value": ["上海", None]},
        {"events": {"type": "order.paid", "min": 2, "max": None, "within": "5228w"}},
        {"stage": {"pipeline_id": 1, "in": ["won"]}},
        {"any": [{"segment": 3}, {"source": {"in": ["form"]}}]},
    ],
)
def test_documented_rules_are_allowed(rule):
    assert VALIDATOR.is_valid(rule) and _parser_accepts(rule)


@pytest.mark.parametrize(
    "rule",
    [
        {"field": "age", "op": "between", "value": [1]},
        {"events": {"type": "order.paid", "within": "5229w"}},
        {"stage": {"pipeline_id": 2**31, "in": ["won"]}},
        {"tags": {"any_of": ["a"], "all_of": ["b"]}},
        {"churned": True, "source": {"in": ["x"]}},
        {"field": "tag", "op": "contains", "value": None},
    ],
)
def test_shapes_the_parser_refuses_the_schema_refuses(rule):
    assert not VALIDATOR.is_valid(rule) and not _parser_accepts(rule)


def test_nesting_is_bounded_by_the_parser_as_the_schema_describes():
    deep: dict[str, Any] = {"churned": True}
    for _ in range(MAX_DEPTH):
        deep = {"not": deep}
    assert _depth(deep) == MAX_DEPTH + 1 and _parser_accepts(deep)
    assert not _parser_accepts({"not": deep})
    assert f"nested at most {MAX_DEPTH} levels" in COMPONENTS["Rule"]["description"]


@pytest.mark.parametrize("most", [0, 9, 10, 99, 5228, 36600, 878400])
def test_upto_pattern_takes_exactly_zero_to_most(most):
    import re

    pattern = re.compile(f"(?:{upto_pattern(most)})")
    assert all(bool(pattern.fullmatch(str(n))) == (n <= most) for n in range(most * 2 + 20))
    assert not pattern.fullmatch(f"0{most}")

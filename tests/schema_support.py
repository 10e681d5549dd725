"""What the schema-versus-parser property tests share (tests/test_sop_schema.py,
tests/test_journey_schema.py): the rows a rule's parser needs, given as the
tenant's would be, and the mutations one change away from a drawn document."""

from __future__ import annotations

import copy
from typing import Any, NamedTuple

from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st
from sopflow.conditions import FIELD_OPS, RuleError, parse
from sopflow.conditions.parse import MAX_ID, whole_number

#: what the rule language's schema names as unstated, by message: a comparison of
#: two values, and the bounds stated in the Rule's description only
RULE_UNSTATED = ("nothing can match", "; swap them", "nesting is deeper than", "nodes; a rule may hold")


class Field(NamedTuple):
    type: str
    choices: tuple[str, ...]
    read_only: bool = False


def strings(value: Any) -> tuple[str, ...]:
    items = value if isinstance(value, list) else [value]
    return tuple(v for v in items if isinstance(v, str))


def _fitting(condition: dict[str, Any]) -> Field | None:
    """A field type under which the parser takes this one rule condition, if any."""
    for ftype in FIELD_OPS:
        field = Field(ftype, strings(condition.get("value")))
        try:
            parse({**condition, "field": "f"}, {"f": field})
        except RuleError as exc:
            if all(any(u in m for u in RULE_UNSTATED) for _, m in exc.problems):
                return field
            continue
        return field
    return None


def with_rows(rule: Any, fields: dict[str, Any]) -> Any:
    """A rule as the engine hands it to the parser (segments expanded, each
    field condition given a field that fits it); None when none fits."""
    if isinstance(rule, list):
        out = [with_rows(r, fields) for r in rule]
        return None if any(r is None for r in out) else out
    if not isinstance(rule, dict):
        return rule
    if set(rule) == {"segment"}:  # a saved segment's id; any other value names none
        sid = whole_number(rule["segment"])
        return {"churned": True} if sid is not None and 1 <= sid <= MAX_ID else rule
    if "field" in rule and isinstance(rule.get("field"), str) and "op" in rule:
        field = _fitting(rule)
        if field is None:
            return None
        key = f"f{len(fields)}"
        fields[key] = field
        return {**rule, "field": key}
    out = {k: with_rows(v, fields) for k, v in rule.items()}
    return None if any(v is None for k, v in out.items() if rule[k] is not None) else out


#: no shrinking: a definition is a deep document, and shrinking one took minutes
SETTINGS = settings(
    max_examples=60,
    deadline=None,
    derandomize=True,
    phases=[Phase.explicit, Phase.generate],
    suppress_health_check=list(HealthCheck),
)

JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-3, 2**63) | st.floats(allow_nan=False) | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=5,
)


def places(doc: Any, at: tuple = ()) -> list[tuple]:
    """Every place in ``doc``, as the path of keys and indexes to it."""
    found = [at]
    if isinstance(doc, dict):
        for k, v in doc.items():
            found += places(v, (*at, k))
    elif isinstance(doc, list):
        for i, v in enumerate(doc):
            found += places(v, (*at, i))
    return found


def mutate(doc: Any, at: tuple, how: str, new: Any) -> Any:
    """``doc`` with the value at ``at`` replaced by ``new``, dropped, or ``new`` added beside it."""
    if not at:
        return new
    doc = copy.deepcopy(doc)
    parent = doc
    for step in at[:-1]:
        parent = parent[step]
    if how == "drop":
        parent.pop(at[-1])
    elif how == "add" and isinstance(parent, dict):
        parent[str(new)[:8] or "x"] = new
    else:
        parent[at[-1]] = new
    return doc


def _shape(at: tuple) -> tuple[str, ...]:
    return tuple("[]" if isinstance(step, int) else str(step) for step in at)


def mutant(data: Any, doc: Any) -> Any:
    """One change to ``doc``, drawn from ``data``: the kind of place first (a key
    path, any index), so a long list does not leave its neighbours unchanged."""
    found = places(doc)
    shape = data.draw(st.sampled_from(sorted({_shape(at) for at in found})))
    at = data.draw(st.sampled_from([at for at in found if _shape(at) == shape]))
    how = data.draw(st.sampled_from(["replace", "drop", "add"])) if at else "replace"
    return mutate(doc, at, how, data.draw(JSON))

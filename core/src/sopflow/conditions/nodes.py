"""The parsed rule tree: frozen records the two back-ends walk.

``parse`` builds these from JSON after validation, so every value here is
already in its stored (canonical) form and every op fits its field's type.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import attrs

FIELD_OPS: dict[str, tuple[str, ...]] = {
    "text": ("eq", "ne", "lt", "lte", "gt", "gte", "in", "not_in", "contains", "exists", "between"),
    "choice": ("eq", "ne", "in", "not_in", "exists"),
    "number": ("eq", "ne", "lt", "lte", "gt", "gte", "in", "not_in", "exists", "between"),
    "bool": ("eq", "ne", "exists"),
    "date": (
        "eq", "ne", "lt", "lte", "gt", "gte", "in", "not_in", "exists", "between",
        "within_last", "within_next", "older_than",
    ),
    "datetime": (
        "eq", "ne", "lt", "lte", "gt", "gte", "exists", "between",
        "within_last", "within_next", "older_than",
    ),
    "multi_choice": ("contains", "exists"),
}  # fmt: skip
"""Which ops each field type accepts."""

ALL_OPS: tuple[str, ...] = tuple(dict.fromkeys(op for ops in FIELD_OPS.values() for op in ops))
RELATIVE_OPS = ("within_last", "within_next", "older_than")


@attrs.frozen
class All:
    children: tuple[Node, ...]


@attrs.frozen
class Any_:
    children: tuple[Node, ...]


@attrs.frozen
class Not:
    child: Node


@attrs.frozen
class FieldPredicate:
    """``value`` is canonical: a stored-form scalar, a tuple for in/not_in/between,
    a bool for exists, a ``timedelta`` for the date-relative ops."""

    field: str
    type: str
    op: str
    value: Any


@attrs.frozen
class TagPredicate:
    mode: str  # any_of | all_of | none_of
    tags: tuple[str, ...]


@attrs.frozen
class StagePredicate:
    pipeline_id: int
    names: tuple[str, ...]


@attrs.frozen
class ChurnPredicate:
    churned: bool


@attrs.frozen
class SourcePredicate:
    sources: tuple[str, ...]


@attrs.frozen
class EventPredicate:
    """At least ``min`` and at most ``max`` events of ``type`` since ``now - within``
    (all time when ``within`` is None)."""

    type: str
    min: int
    max: int | None
    within: timedelta | None


Node = (
    All | Any_ | Not | FieldPredicate | TagPredicate | StagePredicate | ChurnPredicate
    | SourcePredicate | EventPredicate
)  # fmt: skip


@attrs.frozen
class Rule:
    """A validated rule: its tree and the JSON it was parsed from."""

    root: Node
    source: Any = attrs.field(eq=False, repr=False, default=None)


def walk(node: Node) -> list[Node]:
    """Every node of a tree, depth first."""
    out: list[Node] = [node]
    if isinstance(node, All | Any_):
        for child in node.children:
            out.extend(walk(child))
    elif isinstance(node, Not):
        out.extend(walk(node.child))
    return out

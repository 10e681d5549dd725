"""Validate a JSON rule against the tenant's field definitions and parse it.

Every problem is collected, with its path and the fix, and raised together as
one :class:`RuleError`; nothing is evaluated until the whole rule is valid.
"""

from __future__ import annotations

import difflib
from collections.abc import Collection, Mapping
from typing import Any, Protocol

from sopflow.conditions.errors import RuleError
from sopflow.conditions.nodes import (
    ALL_OPS,
    FIELD_OPS,
    RELATIVE_OPS,
    All,
    Any_,
    ChurnPredicate,
    EventPredicate,
    FieldPredicate,
    Node,
    Not,
    Rule,
    SourcePredicate,
    StagePredicate,
    TagPredicate,
)
from sopflow.conditions.storage import to_storage
from sopflow.conditions.windows import parse_duration
from sopflow.pagination import MAX_ID  # the largest row id (a larger one names nothing)

MAX_DEPTH = 10
MAX_NODES = 200
MAX_LIST = 500
MAX_EVENT_COUNT = 1_000_000
NODE_KINDS = ("all", "any", "not", "field", "tags", "stage", "churned", "source", "events")
TAG_MODES = ("any_of", "all_of", "none_of")


class FieldDefLike(Protocol):
    type: str
    choices: Collection[str]


class _Parser:
    def __init__(self, fields: Mapping[str, Any], stages: Mapping[int, Collection[str]] | None) -> None:
        self.fields = fields
        self.stages = stages
        self.problems: list[tuple[str, str]] = []
        self.count = 0
        self.too_deep = False

    def fail(self, path: str, message: str) -> None:
        self.problems.append((path or "rule", message))

    def node(self, raw: Any, path: str, depth: int) -> Node | None:
        self.count += 1
        if depth > MAX_DEPTH:
            if not self.too_deep:
                self.fail(path, f"nesting is deeper than {MAX_DEPTH} levels; flatten the rule")
            self.too_deep = True
            return None
        if not isinstance(raw, Mapping):
            self.fail(path, f'expected an object such as {{"all": [...]}}, got {_show(raw)}')
            return None
        kinds = [k for k in raw if k in NODE_KINDS]
        if len(kinds) != 1 or (kinds[0] != "field" and len(raw) != 1):
            if not kinds:
                self.fail(path, f"unknown node {sorted(map(str, raw))}; use one of {', '.join(NODE_KINDS)}")
            elif len(kinds) > 1:
                self.fail(path, f'one node per object, got {kinds}; wrap them in {{"all": [...]}}')
            else:
                extra = sorted(str(k) for k in raw if k != kinds[0])
                self.fail(path, f"unexpected keys {extra} next to {kinds[0]!r}")
            return None
        kind = kinds[0]
        sub = f"{path}.{kind}" if path else kind
        if kind in ("all", "any"):
            return self.group(kind, raw[kind], sub, depth)
        if kind == "not":
            child = self.node(raw["not"], sub, depth + 1)
            return Not(child) if child is not None else None
        return getattr(self, kind)(raw, path, sub)

    def group(self, kind: str, items: Any, path: str, depth: int) -> Node | None:
        if not isinstance(items, list) or not items:
            self.fail(path, f"{kind!r} needs a non-empty list of conditions")
            return None
        children = [self.node(item, f"{path}[{i}]", depth + 1) for i, item in enumerate(items)]
        if any(c is None for c in children):
            return None
        return (All if kind == "all" else Any_)(tuple(children))  # type: ignore[arg-type]

    def field(self, raw: Mapping[str, Any], path: str, sub: str) -> Node | None:
        key, op = raw.get("field"), raw.get("op")
        at = f"{path}." if path else ""
        allowed = {"field", "op", "value"}
        if set(raw) - allowed:
            self.fail(
                path, f"unexpected keys {sorted(set(raw) - allowed)}; a field condition has field, op, value"
            )
        if not isinstance(key, str) or key not in self.fields:
            self.fail(sub, _unknown_field(key, self.fields))
            return None
        defn = self.fields[key]
        ftype, choices = defn.type, tuple(getattr(defn, "choices", ()) or ())
        if '"' in key or "\\" in key:
            self.fail(sub, f"field key {key!r} cannot be used in rules: it contains a quote or backslash")
        valid = FIELD_OPS.get(ftype, ())
        if op not in valid:
            what = (
                f"unknown op {op!r}" if op not in ALL_OPS else f"op {op!r} does not apply to {ftype} fields"
            )
            self.fail(f"{at}op", f"{what}; use one of {', '.join(valid)} for field {key!r} ({ftype})")
            return None
        if "value" not in raw:
            self.fail(f"{at}value", f"op {op!r} needs a value")
            return None
        value = self.field_value(ftype, choices, key, op, raw["value"], f"{at}value")
        return None if value is _BAD else FieldPredicate(key, ftype, op, value)

    def field_value(
        self, ftype: str, choices: tuple[str, ...], key: str, op: str, value: Any, path: str
    ) -> Any:
        if op == "exists":
            if not isinstance(value, bool):
                self.fail(path, f"{_show(value)} is not true or false; 'exists' takes true or false")
                return _BAD
            return value
        if op in RELATIVE_OPS:
            try:
                span = parse_duration(value)
            except ValueError as exc:
                self.fail(path, str(exc))
                return _BAD
            if ftype == "date" and span.seconds:
                self.fail(path, f"{value!r}: date field {key!r} counts whole days; use 'd' or 'w'")
                return _BAD
            return span
        if op in ("in", "not_in", "between"):
            if op == "between" and (not isinstance(value, list) or len(value) != 2):
                self.fail(path, f"{_show(value)}: 'between' takes a list [low, high] (both inclusive)")
                return _BAD
            if not isinstance(value, list) or not value or len(value) > MAX_LIST:
                self.fail(path, f"{_show(value)}: {op!r} takes a non-empty list of at most {MAX_LIST} values")
                return _BAD
            items = [self.scalar(ftype, choices, key, v, f"{path}[{i}]") for i, v in enumerate(value)]
            if any(v is _BAD for v in items):
                return _BAD
            if op == "between" and None in items:
                self.fail(path, f"{_show(value)}: 'between' takes two values, not null")
                return _BAD
            if op == "between" and items[0] > items[1]:
                self.fail(path, f"low {value[0]!r} is above high {value[1]!r}; swap them")
                return _BAD
            return tuple(items)
        if op == "contains":
            if not isinstance(value, str) or not value:
                self.fail(path, f"{_show(value)}: 'contains' takes a non-empty text")
                return _BAD
            if ftype == "multi_choice":
                return self.scalar("choice", choices, key, value, path)
        return self.scalar(ftype, choices, key, value, path)

    def scalar(self, ftype: str, choices: tuple[str, ...], key: str, value: Any, path: str) -> Any:
        kind = {"text": "text", "choice": "choice", "number": "a number", "bool": "true or false"}
        if ftype == "choice" and isinstance(value, str) and value not in choices:
            close = difflib.get_close_matches(value, choices, n=1)
            hint = f" — did you mean {close[0]!r}?" if close else f"; use one of {list(choices)}"
            self.fail(path, f"{value!r} is not a choice of field {key!r}{hint}")
            return _BAD
        try:
            return to_storage(ftype, value, choices)
        except ValueError as exc:
            label = kind.get(ftype, f"a {ftype}")
            detail = str(exc) if ftype in ("date", "datetime") else f"{_show(value)} is not {label}"
            self.fail(path, f"{detail} for field {key!r}")
            return _BAD

    def tags(self, raw: Mapping[str, Any], path: str, sub: str) -> Node | None:
        spec = raw["tags"]
        if not isinstance(spec, Mapping) or len(spec) != 1 or next(iter(spec)) not in TAG_MODES:
            self.fail(sub, f"expected one of {', '.join(TAG_MODES)} with a list of tags, got {_show(spec)}")
            return None
        mode = next(iter(spec))
        tags = self.strings(spec[mode], f"{sub}.{mode}", "tag", max_len=100)
        return TagPredicate(mode, tags) if tags is not None else None

    def stage(self, raw: Mapping[str, Any], path: str, sub: str) -> Node | None:
        spec = raw["stage"]
        if not isinstance(spec, Mapping) or set(spec) != {"pipeline_id", "in"}:
            self.fail(sub, f'expected {{"pipeline_id": 1, "in": [stage names]}}, got {_show(spec)}')
            return None
        pid = whole_number(spec["pipeline_id"])
        if pid is None or not 1 <= pid <= MAX_ID:
            self.fail(
                f"{sub}.pipeline_id",
                f"{_show(spec['pipeline_id'])} is not a pipeline id (a positive integer)",
            )
            return None
        names = self.strings(spec["in"], f"{sub}.in", "stage name", max_len=100)
        if names is None:
            return None
        if self.stages is not None:
            if pid not in self.stages:
                self.fail(f"{sub}.pipeline_id", f"unknown pipeline {pid}; use one of {sorted(self.stages)}")
                return None
            known = list(self.stages[pid])
            for i, name in enumerate(names):
                if name not in known:
                    close = difflib.get_close_matches(name, known, n=1)
                    hint = f" — did you mean {close[0]!r}?" if close else f"; its stages are {known}"
                    self.fail(f"{sub}.in[{i}]", f"pipeline {pid} has no stage {name!r}{hint}")
        return StagePredicate(pid, names)

    def churned(self, raw: Mapping[str, Any], path: str, sub: str) -> Node | None:
        if not isinstance(raw["churned"], bool):
            self.fail(sub, f"{_show(raw['churned'])} is not true or false")
            return None
        return ChurnPredicate(raw["churned"])

    def source(self, raw: Mapping[str, Any], path: str, sub: str) -> Node | None:
        spec = raw["source"]
        if not isinstance(spec, Mapping) or set(spec) != {"in"}:
            self.fail(sub, f'expected {{"in": [sources]}}, got {_show(spec)}')
            return None
        sources = self.strings(spec["in"], f"{sub}.in", "source", max_len=100)
        return SourcePredicate(sources) if sources is not None else None

    def events(self, raw: Mapping[str, Any], path: str, sub: str) -> Node | None:
        spec = raw["events"]
        allowed = {"type", "min", "max", "within"}
        if not isinstance(spec, Mapping) or "type" not in spec or set(spec) - allowed:
            self.fail(sub, f'expected {{"type": "order.paid", "min": 2, "within": "90d"}}, got {_show(spec)}')
            return None
        ok = True
        etype = spec["type"]
        if not isinstance(etype, str) or not etype or len(etype) > 100 or "\x00" in etype:
            self.fail(f"{sub}.type", f"{_show(etype)} is not an event type such as 'order.paid'")
            ok = False
        bounds: dict[str, int | None] = {"min": None, "max": None}
        for name in bounds:
            v = spec.get(name)
            count = whole_number(v)
            if v is not None and (count is None or not 0 <= count <= MAX_EVENT_COUNT):
                self.fail(f"{sub}.{name}", f"{_show(v)} is not a count (a whole number from 0)")
                ok = False
            else:
                bounds[name] = count
        low = bounds["min"] if bounds["min"] is not None else (0 if bounds["max"] is not None else 1)
        high = bounds["max"]
        if ok and high is not None and low > high:
            self.fail(sub, f"min {low} is above max {high}; nothing can match")
            ok = False
        within = None
        if spec.get("within") is not None:
            try:
                within = parse_duration(spec["within"])
            except ValueError as exc:
                self.fail(f"{sub}.within", str(exc))
                ok = False
        return EventPredicate(etype, low, high, within) if ok else None

    def strings(self, items: Any, path: str, what: str, *, max_len: int) -> tuple[str, ...] | None:
        if not isinstance(items, list) or not items or len(items) > MAX_LIST:
            self.fail(path, f"expected a non-empty list of at most {MAX_LIST} {what}s, got {_show(items)}")
            return None
        ok = True
        for i, item in enumerate(items):
            if not isinstance(item, str) or not item or len(item) > max_len or "\x00" in item:
                self.fail(f"{path}[{i}]", f"{_show(item)} is not a {what} (non-empty text up to {max_len})")
                ok = False
        return tuple(items) if ok else None


_BAD = object()


def whole_number(value: Any) -> int | None:
    """``value`` as an int when JSON spells a whole number (``3`` or ``3.0``, as JSON
    Schema's ``integer`` counts it), else None (a bool is not a number here)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return None


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _unknown_field(key: Any, fields: Mapping[str, Any]) -> str:
    if not isinstance(key, str):
        return f"{_show(key)} is not a field key; name one of the tenant's fields"
    close = difflib.get_close_matches(key, list(fields), n=1)
    hint = f" — did you mean {close[0]!r}?" if close else " — define it with POST /api/v1/fields"
    return f"unknown field {key!r}{hint}"


def parse(
    rule: Any,
    fields: Mapping[str, FieldDefLike],
    *,
    stages: Mapping[int, Collection[str]] | None = None,
) -> Rule:
    """Validate ``rule`` and return the parsed :class:`Rule`.

    ``fields`` maps field keys to definitions (anything with ``.type`` and
    ``.choices``).  ``stages``, when given, maps pipeline ids to their stage
    names so stage conditions are checked too.  Raises :class:`RuleError` with
    every problem found.
    """
    parser = _Parser(fields, stages)
    root = parser.node(rule, "", 0)
    if parser.count > MAX_NODES:
        limit = f"a rule may hold at most {MAX_NODES} (all/any/not and conditions) — split it"
        parser.fail("rule", f"{parser.count} nodes; {limit}")
    if parser.problems or root is None:
        raise RuleError(parser.problems or [("rule", "invalid rule")])
    return Rule(root, rule)


validate = parse

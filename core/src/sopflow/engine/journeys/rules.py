"""Stage entry rules and stage reminders: validation with paths and
fixes, and the translation into the rule language.

A stage has up to 5 rules joined by OR; a rule is an AND of up to 5
conditions. A condition is any rule-language node (tags — several tags in one
condition mean any of them —, a field, events, source) plus, at most once per
rule, the customer's current stage in this journey and their churn status::

    {"conditions": [{"tags": {"any_of": ["拔牙"]}},
                    {"stage": {"in": ["咨询"]}},
                    {"churned": false}]}

A stage condition without ``pipeline_id`` means this journey's pipeline.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sopflow.conditions import RuleError, parse
from sopflow.conditions.parse import whole_number
from sopflow.engine.sops.definition import HHMM, MAX_DAY, attachments, template

MAX_RULES = 5
MAX_CONDITIONS = 5
MAX_REMINDERS = 10
#: conditions a seed rule may hold at most once
ONCE = {"stage": "current stage", "churned": "churn status"}


def check_rules(
    raw: Any,
    path: str,
    *,
    pipeline_id: int,
    stage_names: Sequence[str],
    fields: Mapping[str, Any],
    problems: list[tuple[str, str]],
) -> list[dict[str, Any]]:
    """The normalised rules (stage conditions carry ``pipeline_id``); problems appended."""
    if raw is None:
        return []
    if not isinstance(raw, list):
        problems.append((path, 'a list of rules: [{"conditions": [...]}, ...]'))
        return []
    if len(raw) > MAX_RULES:
        problems.append((path, f"at most {MAX_RULES} rules per stage (they are joined by OR); merge some"))
    out = []
    for i, rule in enumerate(raw[:MAX_RULES]):
        rp = f"{path}[{i}]"
        conditions = rule.get("conditions") if isinstance(rule, Mapping) else None
        if not isinstance(conditions, list) or not conditions:
            problems.append((f"{rp}.conditions", "give 1 to 5 conditions (they are joined by AND)"))
            continue
        if len(conditions) > MAX_CONDITIONS:
            problems.append(
                (f"{rp}.conditions", f"at most {MAX_CONDITIONS} conditions per rule; split it into two rules")
            )
        seen: dict[str, int] = {}
        normalised = []
        for j, cond in enumerate(conditions[:MAX_CONDITIONS]):
            cp = f"{rp}.conditions[{j}]"
            kind = next(iter(cond), None) if isinstance(cond, Mapping) and len(cond) == 1 else None
            if kind in ONCE:
                if kind in seen:
                    problems.append(
                        (
                            cp,
                            f"the {ONCE[kind]} appears twice in this rule "
                            f"(first at conditions[{seen[kind]}]); use it at most once",
                        )
                    )
                seen.setdefault(kind, j)
            if kind == "stage" and isinstance(cond["stage"], Mapping) and "pipeline_id" not in cond["stage"]:
                cond = {"stage": {"pipeline_id": pipeline_id, **cond["stage"]}}
            try:
                parse(cond, fields, stages={pipeline_id: list(stage_names)})
            except RuleError as exc:
                problems.extend((f"{cp}.{p}" if p else cp, m) for p, m in exc.problems)
            normalised.append(cond)
        out.append({"conditions": normalised})
    return out


def as_rule(rules: Sequence[Mapping[str, Any]]) -> dict[str, Any] | None:
    """The stage's rules as one rule-language tree (``None``: no automatic entry)."""
    if not rules:
        return None
    return {"any": [{"all": list(r["conditions"])} for r in rules]}


def check_reminders(raw: Any, path: str, problems: list[tuple[str, str]]) -> list[dict[str, Any]]:
    """``[{"day": 1, "at": "09:00", "text": "...", "attachments": [...]}]``, normalised."""
    if raw is None:
        return []
    if not isinstance(raw, list):
        problems.append((path, 'a list of reminders: [{"day": 1, "at": "09:00", "text": "..."}]'))
        return []
    if len(raw) > MAX_REMINDERS:
        problems.append((path, f"at most {MAX_REMINDERS} reminders per stage"))
    out = []
    for i, item in enumerate(raw[:MAX_REMINDERS]):
        p = f"{path}[{i}]"
        if not isinstance(item, Mapping):
            problems.append((p, 'expected {"day": 1, "at": "09:00", "text": "..."}'))
            continue
        # a whole number, 3 or 3.0 (JSON Schema's integer)
        day, at = whole_number(item.get("day")), item.get("at")
        if day is None or not 0 <= day <= MAX_DAY:
            problems.append((f"{p}.day", f"days after entering the stage, 0 to {MAX_DAY} (0 = that day)"))
        if not isinstance(at, str) or not HHMM.fullmatch(at):
            problems.append((f"{p}.at", "a local time 'HH:MM' (24-hour)"))
        for key in sorted(set(item) - {"day", "at", "text", "attachments"}):
            problems.append((f"{p}.{key}", "unknown reminder setting; use day, at, text, attachments"))
        out.append(
            {
                "day": day,
                "at": at,
                "text": template(item.get("text"), f"{p}.text", problems),
                "attachments": attachments(item.get("attachments"), f"{p}.attachments", problems),
            }
        )
    return out

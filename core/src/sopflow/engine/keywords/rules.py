"""Keyword rules: words in a customer's inbound messages add or remove tags
and set fields.  This module holds the rules themselves: validation and
create / read / update / delete.

* **Validation** reports every problem at once with its path and the fix; the
  stored rule is the normalised result (keywords trimmed and de-duplicated,
  ``set_field`` values in their stored form).
* **Matching** and the per-process cache are in :mod:`sopflow.engine.keywords.matching`.
* **Applying** them to a message is :mod:`sopflow.engine.keywords.apply`.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from sopflow.engine.customers.fields import FieldDef, to_storage, unknown_field_message
from sopflow.engine.keywords.matching import (
    bump_revision,
    match_key,
)
from sopflow.errors import Conflict, InvalidInput, NotFound
from sopflow.logging import get_logger
from sopflow.models import KeywordRule

log = get_logger("sopflow.engine")

MAX_RULES = 200
MAX_KEYWORDS = 2000
MAX_KEYWORD = 100
MAX_ACTIONS = 10
MAX_NAME = 200
MAX_TAG = 100
ACTION_TYPES = ("add_tag", "remove_tag", "set_field")
SETTINGS = ("name", "keywords", "actions", "enabled", "case_sensitive")
NUL = "\x00"  # Postgres text and JSONB cannot hold it


# --------------------------------------------------------------------------- validation


def validate_rule(
    raw: Any, fields: Mapping[str, FieldDef], *, partial: bool = False, case_sensitive: bool = False
) -> dict[str, Any]:
    """The normalised rule (only the keys given when ``partial``), or ``InvalidInput``
    listing every problem.  ``keywords`` are de-duplicated by their match key
    (``case_sensitive`` from ``raw``, else the argument: the rule's current one)."""
    if not isinstance(raw, Mapping):
        raise InvalidInput([("body", "expected a JSON object {name, keywords, actions}")])
    problems: list[tuple[str, str]] = []
    out: dict[str, Any] = {}
    for key in sorted(set(raw) - set(SETTINGS)):
        problems.append((str(key), f"unknown setting; a keyword rule has {', '.join(SETTINGS)}"))
    for key in ("name", "keywords", "actions"):
        if not partial and key not in raw:
            problems.append((key, f"required: {_HINTS[key]}"))
    for key in ("enabled", "case_sensitive"):
        if key in raw:
            if not isinstance(raw[key], bool):
                problems.append((key, "true or false"))
            out[key] = raw[key]
        elif not partial:
            out[key] = key == "enabled"
    if "name" in raw:
        name = raw["name"]
        if not isinstance(name, str) or not name.strip() or len(name) > MAX_NAME or NUL in name:
            problems.append(("name", f"a non-empty name of at most {MAX_NAME} characters"))
        else:
            out["name"] = name.strip()
    if "keywords" in raw:
        sensitive = raw["case_sensitive"] if isinstance(raw.get("case_sensitive"), bool) else case_sensitive
        out["keywords"] = _keywords(raw["keywords"], sensitive, problems)
    if "actions" in raw:
        out["actions"] = _actions(raw["actions"], fields, problems)
    if problems:
        raise InvalidInput(problems)
    return out


_HINTS = {
    "name": "a name unique in this tenant, e.g. '询价'",
    "keywords": 'a list of words to look for, e.g. ["多少钱", "价格"]',
    "actions": 'a list of actions, e.g. [{"type": "add_tag", "tag": "询价"}]',
}


def _keywords(value: Any, case_sensitive: bool, problems: list[tuple[str, str]]) -> list[str]:
    if not isinstance(value, list) or not value:
        problems.append(("keywords", f'give 1 to {MAX_KEYWORDS} keywords, e.g. ["多少钱", "价格"]'))
        return []
    if len(value) > MAX_KEYWORDS:
        problems.append(
            ("keywords", f"at most {MAX_KEYWORDS} keywords per rule (got {len(value)}); split the rule")
        )
    out: list[str] = []
    seen: set[str] = set()
    for i, word in enumerate(value):
        path = f"keywords[{i}]"
        if not isinstance(word, str):
            problems.append((path, f"a keyword is a string, not {type(word).__name__}"))
            continue
        word = word.strip()
        if not word:
            problems.append((path, "empty keyword; remove it or give at least one non-space character"))
        elif NUL in word:
            problems.append((path, "contains a NUL character (\\u0000); remove it"))
        elif len(word) > MAX_KEYWORD:
            problems.append((path, f"longer than {MAX_KEYWORD} characters ({len(word)}); shorten it"))
        elif match_key(word, case_sensitive) not in seen:
            seen.add(match_key(word, case_sensitive))
            out.append(word)
    return out


def _actions(
    value: Any, fields: Mapping[str, FieldDef], problems: list[tuple[str, str]]
) -> list[dict[str, Any]]:
    if not isinstance(value, list) or not value:
        problems.append(
            ("actions", f'give 1 to {MAX_ACTIONS} actions, e.g. [{{"type": "add_tag", "tag": "询价"}}]')
        )
        return []
    if len(value) > MAX_ACTIONS:
        problems.append(("actions", f"at most {MAX_ACTIONS} actions per rule (got {len(value)})"))
    return [_action(f"actions[{j}]", raw, fields, problems) for j, raw in enumerate(value)]


def _action(
    p: str, raw: Any, fields: Mapping[str, FieldDef], problems: list[tuple[str, str]]
) -> dict[str, Any]:
    if not isinstance(raw, Mapping) or raw.get("type") not in ACTION_TYPES:
        problems.append((f"{p}.type", f"use one of {', '.join(ACTION_TYPES)}"))
        return {}
    kind = raw["type"]
    allowed = {"type", "tag"} if kind in ("add_tag", "remove_tag") else {"type", "field", "value"}
    for key in sorted(set(raw) - allowed):
        problems.append((f"{p}.{key}", f"unknown setting for {kind}; give {', '.join(sorted(allowed))}"))
    if kind in ("add_tag", "remove_tag"):
        tag = raw.get("tag")
        if not isinstance(tag, str) or not tag.strip() or len(tag.strip()) > MAX_TAG or NUL in tag:
            problems.append((f"{p}.tag", f"a non-empty tag of at most {MAX_TAG} characters"))
            return {"type": kind, "tag": tag}
        return {"type": kind, "tag": tag.strip()}
    key, value = raw.get("field"), raw.get("value")
    out = {"type": kind, "field": key, "value": value}
    if not isinstance(key, str) or not key:
        problems.append((f"{p}.field", "the key of a field of this tenant (GET /api/v1/fields)"))
        return out
    defn = fields.get(key)
    if defn is None:
        problems.append((f"{p}.field", unknown_field_message(key, fields)))
        return out
    if defn.read_only:
        problems.append(
            (f"{p}.field", f"field {key!r} is maintained by plugin '{defn.plugin}' and is read-only")
        )
        return out
    if "value" not in raw:
        problems.append(
            (f"{p}.value", f"give the value to set (field {key!r} is {defn.type}; null clears it)")
        )
        return out
    try:
        out["value"] = to_storage(defn, value)
        if any(NUL in v for v in _strings(out["value"])):
            raise ValueError("contains a NUL character (\\u0000)")
    except ValueError as exc:
        problems.append((f"{p}.value", f"{exc} (field {key!r} is {defn.type})"))
    return out


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    return [v for v in value if isinstance(v, str)] if isinstance(value, list) else []


# --------------------------------------------------------------------------- storage


def get_rule(session: Session, tenant_id: int, rule_id: int) -> KeywordRule:
    """The tenant's keyword rule ``rule_id``, else ``NotFound``."""
    rule = session.scalar(
        sa.select(KeywordRule).where(KeywordRule.id == rule_id, KeywordRule.tenant_id == tenant_id)
    )
    if rule is None:
        raise NotFound("keyword rule", rule_id)
    return rule


def _name_taken(session: Session, tenant_id: int, name: str, rule_id: int | None = None) -> None:
    q = sa.select(KeywordRule.id).where(KeywordRule.tenant_id == tenant_id, KeywordRule.name == name)
    if rule_id is not None:
        q = q.where(KeywordRule.id != rule_id)
    if session.scalar(q) is not None:
        raise Conflict(
            f"a keyword rule named {name!r} already exists; choose another name or PATCH that rule"
        )


def create_rule(
    session: Session, tenant_id: int, raw: Any, fields: Mapping[str, FieldDef], now: datetime
) -> KeywordRule:
    """Create a keyword rule after validating it (``InvalidInput`` with every
    problem; ``MAX_RULES`` per tenant); a name in use is a ``Conflict``.  Bumps
    the tenant's revision so every process recompiles its matcher."""
    data = validate_rule(raw, fields)
    bump_revision(session, tenant_id)  # first: it takes the tenant's lock for the checks below
    count = session.scalar(
        sa.select(sa.func.count()).select_from(KeywordRule).where(KeywordRule.tenant_id == tenant_id)
    )
    if (count or 0) >= MAX_RULES:
        raise InvalidInput(
            [
                (
                    "keyword_rules",
                    f"this tenant has {MAX_RULES} keyword rules, the most allowed; delete one or put "
                    f"more keywords in a rule (up to {MAX_KEYWORDS} each)",
                )
            ]
        )
    _name_taken(session, tenant_id, data["name"])
    rule = KeywordRule(tenant_id=tenant_id, created_at=now, updated_at=now, **data)
    session.add(rule)
    session.flush()
    return rule


def update_rule(
    session: Session, rule: KeywordRule, raw: Any, fields: Mapping[str, FieldDef], now: datetime
) -> KeywordRule:
    """Apply a partial update (``keywords`` re-deduplicated when only
    ``case_sensitive`` changes); bumps the tenant's revision."""
    changes = dict(raw) if isinstance(raw, Mapping) else raw
    if isinstance(changes, dict) and "case_sensitive" in changes and "keywords" not in changes:
        changes["keywords"] = list(rule.keywords)  # re-deduplicate under the new case rule
    data = validate_rule(changes, fields, partial=True, case_sensitive=rule.case_sensitive)
    bump_revision(session, rule.tenant_id)
    if "name" in data:
        _name_taken(session, rule.tenant_id, data["name"], rule.id)
    for key, value in data.items():
        setattr(rule, key, value)
    rule.updated_at = now
    session.flush()
    return rule


def delete_rule(session: Session, rule: KeywordRule) -> None:
    """Delete a keyword rule; bumps the tenant's revision."""
    bump_revision(session, rule.tenant_id)
    session.delete(rule)
    session.flush()


def rule_to_dict(rule: KeywordRule) -> dict[str, Any]:
    """A keyword rule as the API shows it."""
    return {
        "id": rule.id,
        "name": rule.name,
        "keywords": list(rule.keywords),
        "actions": [dict(a) for a in rule.actions],
        "enabled": rule.enabled,
        "case_sensitive": rule.case_sensitive,
        "created_at": rule.created_at.isoformat(),
        "updated_at": rule.updated_at.isoformat(),
    }


def list_rules(session: Session, tenant_id: int) -> list[dict[str, Any]]:
    """The tenant's keyword rules, oldest first."""
    rows = session.scalars(
        sa.select(KeywordRule).where(KeywordRule.tenant_id == tenant_id).order_by(KeywordRule.id)
    )
    return [rule_to_dict(r) for r in rows]

"""Saved segments and rule previews.  A rule anywhere may reference a segment
as ``{"segment": <id>}``; references are expanded before parsing (nested up to
the rule language's depth limit), so every back-end sees one plain rule."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from sopflow.conditions import RuleError, count_customers, parse, select_customers
from sopflow.conditions.parse import MAX_ID, whole_number
from sopflow.errors import Conflict, InvalidInput, NotFound
from sopflow.models import Segment

MAX_SEGMENT_NESTING = 5


def expand_segments(session: Session, tenant_id: int, rule: Any, path: str = "rule", depth: int = 0) -> Any:
    """``rule`` with every ``{"segment": id}`` replaced by that saved segment's
    rule, recursively (at most ``MAX_SEGMENT_NESTING`` deep, so a segment naming
    itself fails).  Rules are stored expanded, so editing a segment never
    changes a running SOP or journey under it."""
    if isinstance(rule, list):
        return [expand_segments(session, tenant_id, r, f"{path}[{i}]", depth) for i, r in enumerate(rule)]
    if not isinstance(rule, Mapping):
        return rule
    if set(rule) == {"segment"}:
        if depth >= MAX_SEGMENT_NESTING:
            raise InvalidInput(
                [(path, f"segments nest deeper than {MAX_SEGMENT_NESTING}; is one referencing itself?")]
            )
        sid = whole_number(rule["segment"])
        seg = (
            session.scalar(sa.select(Segment).where(Segment.id == sid, Segment.tenant_id == tenant_id))
            if sid is not None and 1 <= sid <= MAX_ID  # a larger one names no row (and overflows the query)
            else None
        )
        if seg is None:
            raise InvalidInput(
                [(f"{path}.segment", "the id of a saved segment of this tenant (GET /api/v1/segments)")]
            )
        return expand_segments(session, tenant_id, seg.rule, path, depth + 1)
    return {k: expand_segments(session, tenant_id, v, f"{path}.{k}", depth) for k, v in rule.items()}


def checked_rule(session: Session, tenant_id: int, rule: Any, fields: Mapping[str, Any]) -> Any:
    """``rule`` expanded and parsed against ``fields``; ``InvalidInput`` with the
    path of every problem under ``rule``."""
    expanded = expand_segments(session, tenant_id, rule)
    try:
        return parse(expanded, fields)
    except RuleError as exc:
        raise InvalidInput([(f"rule.{p}" if p else "rule", m) for p, m in exc.problems]) from None


def create_segment(
    session: Session, tenant_id: int, name: str, rule: Any, fields: Mapping[str, Any], now: datetime
) -> Segment:
    """Save a named rule for the tenant; ``InvalidInput`` for a bad name or rule,
    ``Conflict`` for a name in use."""
    if not isinstance(name, str) or not name.strip() or len(name) > 200:
        raise InvalidInput([("name", "a non-empty name of at most 200 characters")])
    checked_rule(session, tenant_id, rule, fields)
    if session.scalar(sa.select(Segment.id).where(Segment.tenant_id == tenant_id, Segment.name == name)):
        raise Conflict(f"a segment named {name!r} already exists")
    seg = Segment(tenant_id=tenant_id, name=name, rule=rule, created_at=now, updated_at=now)
    session.add(seg)
    session.flush()
    return seg


def get_segment(session: Session, tenant_id: int, segment_id: int) -> Segment:
    """The tenant's segment ``segment_id``, else ``NotFound``."""
    seg = session.scalar(sa.select(Segment).where(Segment.id == segment_id, Segment.tenant_id == tenant_id))
    if seg is None:
        raise NotFound("segment", segment_id)
    return seg


def preview(
    session: Session,
    tenant_id: int,
    rule: Any,
    fields: Mapping[str, Any],
    now: datetime,
    limit: int = 20,
    after_id: int | None = None,
) -> dict[str, Any]:
    """How many customers ``rule`` matches now and a page of their ids (keyset
    pagination by ``after_id``); writes nothing."""
    parsed = checked_rule(session, tenant_id, rule, fields)
    ids = select_customers(session, parsed, tenant_id, now=now, limit=limit + 1, after_id=after_id)
    return {
        "count": count_customers(session, parsed, tenant_id, now=now),
        "customer_ids": ids[:limit],
        "next_after_id": ids[limit - 1] if len(ids) > limit else None,
    }


def segment_to_dict(seg: Segment) -> dict[str, Any]:
    """A segment as the API shows it."""
    return {
        "id": seg.id,
        "name": seg.name,
        "rule": seg.rule,
        "created_at": seg.created_at.isoformat(),
        "updated_at": seg.updated_at.isoformat(),
    }

"""Applying keyword rules to an inbound message, and the dry run.

The actions of all matched enabled rules are merged in rule-id order (a later
rule wins a conflict) and applied once per message; when anything changed, one
``customer.updated`` event records it, keyed on the message event so a re-run
of the same message adds nothing.  The rules themselves (validation, storage)
are :mod:`sopflow.engine.keywords.rules`; matching is
:mod:`sopflow.engine.keywords.matching`.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import attrs
import sqlalchemy as sa
from sqlalchemy.orm import Session

from sopflow.engine.customers.fields import FieldDef, apply_stored, to_storage
from sopflow.engine.customers.records import change_tags, record_change, tags_of
from sopflow.engine.keywords.matching import CompiledRules, Hit, tenant_rules
from sopflow.errors import InvalidInput
from sopflow.logging import get_logger
from sopflow.models import Customer, Event

log = get_logger("sopflow.engine")

EVENT_KEY_PREFIX = "keyword:"
MAX_TEST_TEXT = 20_000
MAX_TEST_HITS = 1000


@attrs.frozen
class Plan:
    """What the matched rules ask for, merged: rule ids, the matched keywords,
    tags to add and remove, field values (stored form)."""

    rules: tuple[int, ...]
    keywords: tuple[str, ...]
    tags_add: tuple[str, ...]
    tags_remove: tuple[str, ...]
    fields: Mapping[str, Any]

    def to_dict(self, compiled: CompiledRules) -> dict[str, Any]:
        """The plan as the dry run shows it: each matched rule with its name and actions."""
        return {
            "rules": [
                {
                    "id": rid,
                    "name": compiled.by_id[rid].name,
                    "actions": [dict(a) for a in compiled.by_id[rid].actions],
                }
                for rid in self.rules
            ],
            "keywords": list(self.keywords),
            "tags_add": list(self.tags_add),
            "tags_remove": list(self.tags_remove),
            "fields": dict(self.fields),
        }


def plan(compiled: CompiledRules, hits: Sequence[Hit]) -> Plan:
    """Merge the actions of every matched rule, in rule-id order: each rule's
    actions apply once however often its keywords occur; a later action wins
    over an earlier one on the same tag or field."""
    matched = sorted({h.rule_id for h in hits})
    keywords: dict[str, None] = {}
    for h in sorted(hits, key=lambda h: (h.start, h.end)):
        keywords.setdefault(h.keyword, None)
    tags: dict[str, bool] = {}
    values: dict[str, Any] = {}
    for rule_id in matched:
        for action in compiled.by_id[rule_id].actions:
            if action.get("type") == "add_tag":
                tags.pop(action["tag"], None)
                tags[action["tag"]] = True
            elif action.get("type") == "remove_tag":
                tags.pop(action["tag"], None)
                tags[action["tag"]] = False
            elif action.get("type") == "set_field":
                values[action["field"]] = action["value"]
    return Plan(
        rules=tuple(matched),
        keywords=tuple(keywords),
        tags_add=tuple(t for t, add in tags.items() if add),
        tags_remove=tuple(t for t, add in tags.items() if not add),
        fields=values,
    )


def apply_keyword_rules(
    session: Session,
    customer: Customer,
    text: Any,
    now: datetime,
    fields: Mapping[str, FieldDef],
    depth: int,
    *,
    message_id: int | None = None,
) -> int:
    """Apply the tenant's enabled keyword rules to one inbound message of
    ``customer``.  Returns how many rules matched (0 when the message was
    already handled).  When anything changed, appends one ``customer.updated``
    event caused by the message (``depth + 1``), which the caller's event
    collector announces so stage rules, journeys and SOPs react."""
    if not isinstance(text, str) or not text:
        return 0
    compiled = tenant_rules(session, customer.tenant_id)
    if not compiled.rules:
        return 0
    hits = list(compiled.iter_hits(text))
    if not hits:
        return 0
    key = (
        f"{EVENT_KEY_PREFIX}{message_id}"
        if message_id is not None
        else f"{EVENT_KEY_PREFIX}{uuid.uuid4().hex}"
    )
    if message_id is not None and session.scalar(
        sa.select(Event.id).where(Event.tenant_id == customer.tenant_id, Event.idempotency_key == key)
    ):
        return 0  # this message was handled before (a retried evaluation)
    wanted = plan(compiled, hits)
    current = set(tags_of(session, customer.id))
    added = sorted(set(wanted.tags_add) - current)
    removed = sorted(set(wanted.tags_remove) & current)
    changed = _field_changes(customer, wanted, fields)
    if not (added or removed or changed):
        return len(wanted.rules)
    tags = change_tags(session, customer, add=added, remove=removed)
    if changed:
        customer.fields = apply_stored(customer.fields, changed)
    customer.updated_at = now
    summary = [k for k, on in (("fields", changed), ("tags_add", added), ("tags_remove", removed)) if on]
    record_change(
        session,
        customer,
        now,
        key=key,
        cause="keyword_rule",
        tags=tags,
        fields=changed,
        depth=depth + 1,
        causation_id=message_id,
        changed=summary,
        rules=list(wanted.rules),
        keywords=list(wanted.keywords),
    )
    return len(wanted.rules)


def _field_changes(customer: Customer, wanted: Plan, fields: Mapping[str, FieldDef]) -> dict[str, Any]:
    """The field values ``wanted`` sets that differ from the customer's, in stored
    form.  A field that is gone, read-only, or whose definition no longer takes
    the value is logged and left alone (the rule was valid when saved)."""
    changed: dict[str, Any] = {}
    for field_key, value in wanted.fields.items():
        defn = fields.get(field_key)
        if defn is None or defn.read_only:
            log.warning("keyword_rule_field_unavailable", tenant_id=customer.tenant_id, field=field_key)
            continue
        try:
            stored = to_storage(defn, value)  # the field's definition may have changed since
        except ValueError as exc:
            log.warning(
                "keyword_rule_value_invalid", tenant_id=customer.tenant_id, field=field_key, error=str(exc)
            )
            continue
        if customer.fields.get(field_key) != stored:
            changed[field_key] = stored
    return changed


def on_message(
    session: Session,
    customer: Customer,
    event: Mapping[str, Any],
    now: datetime,
    fields: Mapping[str, FieldDef],
) -> int:
    """The evaluate step's hook for a ``message.received`` event."""
    payload = event.get("payload") or {}
    return apply_keyword_rules(
        session,
        customer,
        payload.get("text") if isinstance(payload, Mapping) else None,
        now,
        fields,
        int(event.get("depth") or 0),
        message_id=event.get("id"),
    )


def dry_run(session: Session, tenant_id: int, text: str, *, include_disabled: bool = False) -> dict[str, Any]:
    """What a message would match and which actions would apply; writes nothing."""
    if not isinstance(text, str) or len(text) > MAX_TEST_TEXT:
        raise InvalidInput([("text", f"the message text, at most {MAX_TEST_TEXT} characters")])
    compiled = tenant_rules(session, tenant_id)
    hits = compiled.match(text, include_disabled=include_disabled)
    return {
        "hits": [
            {
                "rule_id": h.rule_id,
                "rule_name": compiled.by_id[h.rule_id].name,
                "keyword": h.keyword,
                "start": h.start,
                "end": h.end,
            }
            for h in hits[:MAX_TEST_HITS]
        ],
        "hit_count": len(hits),
        **plan(compiled, hits).to_dict(compiled),
    }

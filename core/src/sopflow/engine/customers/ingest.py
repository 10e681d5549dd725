"""Ingest: normalized events in, customers resolved, fields applied, log appended.

A batch is validated as a whole first: one bad event rejects the batch with
every problem listed and nothing written.  The batch is then written under
one savepoint; if a concurrent transaction stored one of its events (two
deliveries of one webhook racing), each event is written again under its own,
so the race turns into a ``duplicate`` outcome instead of an error.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from sopflow.conditions.storage import NUL_FIX, nul_paths, parse_instant
from sopflow.engine.customers import identities
from sopflow.engine.customers.fields import FieldDef, apply_stored, validate_field_changes
from sopflow.engine.customers.identities import SHARED_KEYS, absent_identities, resolve_identity
from sopflow.engine.customers.records import TagChange, change_tags, check_tags, get_customer, merge_customers
from sopflow.engine.customers.relations import (
    FOLLOW_EVENTS,
    UNFOLLOW_EVENTS,
    check_relations,
    follow,
    unfollow,
)
from sopflow.engine.customers.transfers import FROM_STAFF, TRANSFER_EVENT, check_transfer, transfer_customer
from sopflow.errors import InvalidInput
from sopflow.models import Event

MAX_KEY = 200
MAX_TYPE = 100
#: keys per ``IN (…)`` read of a batch (well under SQLite's 32,766 bound parameters)
CHUNK = 500


def validate_event(
    i: int, raw: Any, defs: Mapping[str, FieldDef], allow_read_only: bool
) -> tuple[dict[str, Any], list[tuple[str, str]]]:
    """The normalised ``i``-th event of a batch and its problems (paths under
    ``events[i]``).  ``allow_read_only``: a plugin may write its own read-only
    fields, an API caller may not."""
    p = f"events[{i}]"
    problems: list[tuple[str, str]] = []
    if not isinstance(raw, Mapping):
        return {}, [(p, "expected an event object")]
    ev: dict[str, Any] = dict(raw)
    etype = ev.get("type")
    if not isinstance(etype, str) or not etype or len(etype) > MAX_TYPE:
        problems.append((f"{p}.type", "give the event type, e.g. 'message.received'"))
    key = ev.get("idempotency_key")
    if not isinstance(key, str) or not key or len(key) > MAX_KEY:
        problems.append(
            (
                f"{p}.idempotency_key",
                f"give a unique key of 1–{MAX_KEY} characters (e.g. the source's message id)",
            )
        )
    ident = ev.get("identity")
    if ev.get("customer_id") is None and ident is None:
        problems.append((f"{p}.identity", "give the channel identity {channel, external_id} or customer_id"))
    if ident is not None:
        for k in ("channel", "external_id"):
            v = ident.get(k) if isinstance(ident, Mapping) else None
            if not isinstance(v, str) or not v or len(v) > 200:
                problems.append((f"{p}.identity.{k}", "a non-empty string of at most 200 characters"))
    problems += _check_shared(ev.get("shared_identities"), f"{p}.shared_identities")
    problems += check_transfer(ev, p)
    ev["relations"], rel_problems = check_relations(ev.get("relations"), f"{p}.relations")
    problems += rel_problems
    if ev["relations"] and ident is None:
        problems.append((f"{p}.identity", "relations need the channel identity they were made on"))
    if ev.get("occurred_at") is not None:
        try:
            ev["occurred_at"] = parse_instant(ev["occurred_at"])
        except ValueError as exc:
            problems.append((f"{p}.occurred_at", str(exc)))
    if not isinstance(ev.get("payload", {}), Mapping):
        problems.append((f"{p}.payload", "expected a JSON object"))
    else:
        problems += [(at, NUL_FIX) for at in nul_paths(ev.get("payload") or {}, f"{p}.payload")]
    stored, field_problems = validate_field_changes(
        ev.get("fields") or {}, defs, f"{p}.fields", allow_read_only=allow_read_only
    )
    ev["fields"] = stored
    problems += field_problems
    problems += check_tags(ev.get("tags_add") or [], f"{p}.tags_add")
    problems += check_tags(ev.get("tags_remove") or [], f"{p}.tags_remove")
    return ev, problems


def ingest(
    session: Session,
    tenant_id: int,
    events: Sequence[Any],
    defs: Mapping[str, FieldDef],
    now: datetime,
    *,
    source: str = "api",
    allow_read_only: bool = False,
    causation_id: int | None = None,
    depth: int = 0,
) -> list[dict[str, Any]]:
    """Ingest a batch.  Returns one outcome per event, in order."""
    validated = []
    problems: list[tuple[str, str]] = []
    for i, raw in enumerate(events):
        ev, errs = validate_event(i, raw, defs, allow_read_only)
        validated.append(ev)
        problems += errs
    if problems:
        raise InvalidInput(problems)
    # customer_id references are checked before anything is written, and the customers
    # held until the store returns (the identity map keeps only what someone refers to),
    # so applying the events reads none of them again
    held = []
    for i, ev in enumerate(validated):
        if ev.get("customer_id") is not None:
            try:
                held.append(get_customer(session, tenant_id, int(ev["customer_id"])))
            except Exception as exc:
                problems.append((f"events[{i}].customer_id", str(exc)))
    if problems:
        raise InvalidInput(problems)
    return _store(session, tenant_id, validated, now, source, causation_id, depth)


def _store(
    session: Session,
    tenant_id: int,
    validated: Sequence[Mapping[str, Any]],
    now: datetime,
    source: str,
    causation_id: int | None,
    depth: int,
) -> list[dict[str, Any]]:
    """Store validated events in order: one outcome each (created or duplicate)."""
    # the batch's reads up front, one statement each: events stored, identities nobody holds
    keys, named = [ev["idempotency_key"] for ev in validated], [_identities(ev) for ev in validated]
    seen, absent = stored_events(session, tenant_id, keys), absent_identities(session, tenant_id, named)
    try:  # the common case first: the whole batch under one savepoint, not one per event
        with session.begin_nested():
            return _store_each(session, tenant_id, validated, now, source, causation_id, depth, seen, absent)
    except IntegrityError:
        # another transaction stored one of the events, or created one of their
        # identities, since the reads above: again, each event under its own savepoint
        seen, absent = stored_events(session, tenant_id, keys), set()
        return _store_each(
            session, tenant_id, validated, now, source, causation_id, depth, seen, absent, guarded=True
        )


def _store_each(
    session: Session,
    tenant_id: int,
    validated: Sequence[Mapping[str, Any]],
    now: datetime,
    source: str,
    causation_id: int | None,
    depth: int,
    seen: dict[str, int],
    absent: set[tuple[str, str]],
    *,
    guarded: bool = False,
) -> list[dict[str, Any]]:
    """Each event in order; ``guarded``: each under a savepoint, and one that meets
    a row another transaction just stored is a duplicate or applied again."""
    outcomes = []
    for i, ev in enumerate(validated):
        key = ev["idempotency_key"]
        if key in seen:
            outcomes.append(
                {"index": i, "idempotency_key": key, "status": "duplicate", "event_id": seen[key]}
            )
            continue
        args = (session, tenant_id, ev, now, source, causation_id, depth, absent)
        if not guarded:
            outcome = _apply(*args)
        else:
            try:
                with session.begin_nested():
                    outcome = _apply(*args)
            except IntegrityError:
                absent.clear()
                existing = session.scalar(
                    sa.select(Event.id).where(Event.tenant_id == tenant_id, Event.idempotency_key == key)
                )
                if existing is not None:
                    outcome = {"status": "duplicate", "event_id": existing}
                else:
                    with session.begin_nested():
                        outcome = _apply(*args)
        seen[key] = outcome["event_id"]
        outcomes.append({"index": i, "idempotency_key": key, **outcome})
    return outcomes


def stored_events(session: Session, tenant_id: int, keys: Sequence[str]) -> dict[str, int]:
    """Idempotency key → event id, for those of ``keys`` already stored."""
    found: dict[str, int] = {}
    unique = sorted(set(keys))
    for start in range(0, len(unique), CHUNK):
        rows = session.execute(
            sa.select(Event.idempotency_key, Event.id).where(
                Event.tenant_id == tenant_id, Event.idempotency_key.in_(unique[start : start + CHUNK])
            )
        )
        found.update({key: event_id for key, event_id in rows})
    return found


def _identities(ev: Mapping[str, Any]) -> list[tuple[str, str]]:
    """The (channel, external id) pairs an event names: its identity and shared keys."""
    if ev.get("customer_id") is not None:
        return []
    named = [(ev["identity"]["channel"], ev["identity"]["external_id"])]
    return named + [(k["channel"], k["external_id"]) for k in ev.get("shared_identities") or ()]


def _apply(
    session: Session,
    tenant_id: int,
    ev: Mapping[str, Any],
    now: datetime,
    source: str,
    causation_id: int | None,
    depth: int,
    absent: set[tuple[str, str]],
) -> dict[str, Any]:
    customer, created = _resolve(session, tenant_id, ev, now, absent)
    if ev.get("display_name") and not customer.display_name:
        customer.display_name = ev["display_name"]
    changed_fields: list[str] = []
    if ev["fields"]:
        before = dict(customer.fields or {})
        customer.fields = apply_stored(customer.fields, ev["fields"])
        changed_fields = [k for k in ev["fields"] if before.get(k) != customer.fields.get(k)]
    if ev.get("source") and not customer.source:
        customer.source = ev["source"]
    tags = change_tags(session, customer, ev.get("tags_add") or [], ev.get("tags_remove") or [])
    occurred_at = ev.get("occurred_at") or now
    still_followed = _end_relation(session, customer, ev, occurred_at)
    if ev["type"] == TRANSFER_EVENT and ev.get("identity"):
        ident = ev["identity"]
        giver = (ev.get("payload") or {})[FROM_STAFF]
        transfer_customer(session, customer, ident["channel"], giver, ident["staff_external_id"], occurred_at)
    if ev["type"] == "customer.churned" and customer.churned_at is None and not still_followed:
        customer.churned_at = occurred_at
    elif ev["type"] == "customer.added" and customer.churned_at is not None:
        customer.churned_at = None  # re-added after churning: active again
    customer.updated_at = now
    event = Event(
        tenant_id=tenant_id,
        customer_id=customer.id,
        type=ev["type"],
        idempotency_key=ev["idempotency_key"],
        occurred_at=occurred_at,
        received_at=now,
        # what the tags and fields actually changed by, for plugins (a CRM, WeCom corp tags)
        payload={
            **(ev.get("payload") or {}),
            **_tag_payload(ev, tags),
            **({"fields_changed": changed_fields} if changed_fields else {}),
        },
        source=source,
        causation_id=causation_id,
        depth=depth,
    )
    session.add(event)
    session.flush()
    return {
        "status": "created",
        "event_id": event.id,
        "customer_id": customer.id,
        "customer_created": created,
    }


def _resolve(
    session: Session, tenant_id: int, ev: Mapping[str, Any], now: datetime, absent: set[tuple[str, str]]
) -> tuple[Any, bool]:
    """The event's customer (and whether it was created), its relations recorded."""
    if ev.get("customer_id") is not None:
        return get_customer(session, tenant_id, int(ev["customer_id"])), False
    ident = ev["identity"]
    customer, created = resolve_identity(
        session,
        tenant_id,
        ident["channel"],
        ident["external_id"],
        now,
        ident.get("staff_external_id"),
        ev.get("display_name"),
        ev.get("shared_identities") or (),
        absent=absent,
    )
    customer = _join_shared_holder(session, tenant_id, customer, ev, now)
    _apply_relations(session, customer, ev, now)
    return customer, created


def _check_shared(raw: Any, path: str) -> list[tuple[str, str]]:
    """The problems with an event's ``shared_identities`` (``[{channel, external_id}]``)."""
    if raw is None:
        return []
    if not isinstance(raw, Sequence) or isinstance(raw, str) or len(raw) > 10:
        return [(path, "a list of at most 10 {channel, external_id}")]
    problems = []
    for i, key in enumerate(raw):
        channel = key.get("channel") if isinstance(key, Mapping) else None
        value = key.get("external_id") if isinstance(key, Mapping) else None
        if channel not in SHARED_KEYS:
            problems.append((f"{path}[{i}].channel", f"a shared key is one of {', '.join(SHARED_KEYS)}"))
        if not isinstance(value, str) or not value or len(value) > 200:
            problems.append((f"{path}[{i}].external_id", "a non-empty string of at most 200 characters"))
    return problems


def _join_shared_holder(
    session: Session, tenant_id: int, customer: Any, ev: Mapping[str, Any], now: datetime
) -> Any:
    """A known customer whose event names a shared key another customer holds
    (WeCom's unionid learnt after the personal-WeChat friend came): one person,
    so the two are merged into the one holding the key."""
    holder = identities.shared_key_holder(session, tenant_id, ev.get("shared_identities") or ())
    if holder is None or holder.id == customer.id:
        return customer
    return merge_customers(session, tenant_id, holder.id, customer.id, now)


def _apply_relations(session: Session, customer: Any, ev: Mapping[str, Any], now: datetime) -> None:
    """An add event starts a relation with its staff member (add time, source,
    remark from the event); ``relations`` lists more (WeCom's ``follow_user``)."""
    ident = ev["identity"]
    payload = ev.get("payload") or {}
    staff = ident.get("staff_external_id")
    if ev["type"] in FOLLOW_EVENTS and staff:
        follow(
            session,
            customer,
            ident["channel"],
            staff,
            now,
            added_at=ev.get("occurred_at") or now,
            source=_short(ev.get("source") or payload.get("state"), 100),
            remark=_short(payload.get("remark"), 200),
        )
    for rel in ev["relations"]:
        follow(
            session,
            customer,
            ident["channel"],
            rel["staff_external_id"],
            now,
            added_at=rel.get("added_at"),
            source=rel.get("source"),
            remark=rel.get("remark"),
        )


def _end_relation(session: Session, customer: Any, ev: Mapping[str, Any], when: datetime) -> bool:
    """End the relation a delete event names; whether the customer is still followed."""
    ident = ev.get("identity") or {}
    if ev["type"] not in UNFOLLOW_EVENTS or not ident.get("staff_external_id"):
        return False
    return unfollow(session, customer, ident["channel"], ident["staff_external_id"], when, ev["type"])


def _short(value: Any, limit: int) -> str | None:
    return value[:limit] if isinstance(value, str) and value else None


def event_to_dict(event: Event) -> dict[str, Any]:
    """A stored event as the API shows it."""
    return {
        "id": event.id,
        "type": event.type,
        "customer_id": event.customer_id,
        "idempotency_key": event.idempotency_key,
        "occurred_at": event.occurred_at.isoformat(),
        "received_at": event.received_at.isoformat(),
        "payload": event.payload,
        "source": event.source,
        "causation_id": event.causation_id,
        "depth": event.depth,
    }


def _tag_payload(ev: Mapping[str, Any], tags: TagChange) -> dict[str, list[str]]:
    """When the event asked for tag changes: the ones that actually happened."""
    if not (ev.get("tags_add") or ev.get("tags_remove")):
        return {}
    return {"tags_added": list(tags.added), "tags_removed": list(tags.removed)}

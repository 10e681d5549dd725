"""Customers: create, update, tags, merge, listing.  Their channel identities
and staff are :mod:`sopflow.engine.customers.identities`."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

import attrs
import sqlalchemy as sa
from sqlalchemy.orm import Session

from sopflow.engine.customers.fields import FieldDef, apply_stored, validate_field_changes
from sopflow.engine.customers.identities import add_identity, identity_conflicts, staff_by_external_id
from sopflow.engine.customers.relations import follow, merge_relations, relations_of
from sopflow.engine.customers.tenants import check_timezone
from sopflow.errors import Conflict, InvalidInput, NotFound
from sopflow.models import (
    ChannelIdentity,
    Customer,
    CustomerStage,
    CustomerTag,
    Event,
    Staff,
    StageHistory,
)

MAX_TAG = 100
#: The longest display name (the column's width, and the API's limit).
MAX_NAME = 200
MAX_TAGS_PER_CALL = 200


def get_customer(session: Session, tenant_id: int, customer_id: int, *, lock: bool = False) -> Customer:
    """The tenant's customer ``customer_id`` (``lock``: FOR UPDATE); ``NotFound``
    when it does not exist or was merged into another.  Unlocked, a customer this
    transaction already loaded costs no statement (ingest checks it, then applies)."""
    if lock:
        customer = session.scalar(
            sa.select(Customer)
            .where(Customer.id == customer_id, Customer.tenant_id == tenant_id)
            .with_for_update()
        )
    else:
        customer = session.get(Customer, customer_id)
    if customer is None or customer.tenant_id != tenant_id:
        raise NotFound("customer", customer_id)
    if customer.merged_into_id is not None:
        raise NotFound("customer", f"{customer_id} (merged into {customer.merged_into_id})")
    return customer


def check_tags(tags: Iterable[Any], path: str) -> list[tuple[str, str]]:
    """The problems with ``tags`` (at ``path``): too many, or not a short non-empty string."""
    problems = []
    tags = list(tags)
    if len(tags) > MAX_TAGS_PER_CALL:
        problems.append((path, f"at most {MAX_TAGS_PER_CALL} tags per request"))
    for i, tag in enumerate(tags):
        if not isinstance(tag, str) or not tag.strip() or len(tag) > MAX_TAG:
            problems.append((f"{path}[{i}]", f"a tag is a non-empty string of at most {MAX_TAG} characters"))
    return problems


def tags_of(session: Session, customer_id: int) -> list[str]:
    """A customer's tags, sorted."""
    return sorted(session.scalars(sa.select(CustomerTag.tag).where(CustomerTag.customer_id == customer_id)))


@attrs.frozen
class TagChange:
    """What :func:`change_tags` actually changed; false when nothing did."""

    added: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.added or self.removed)


def change_tags(
    session: Session, customer: Customer, add: Iterable[str] = (), remove: Iterable[str] = ()
) -> TagChange:
    """Add and remove tags; returns what changed."""
    add, remove = list(add), list(remove)
    if not add and not remove:  # most events change no tag: no read, no flush
        return TagChange()
    current = set(tags_of(session, customer.id))
    add_set = {t.strip() for t in add} - current
    remove_set = {t.strip() for t in remove} & current
    for tag in sorted(add_set):
        session.add(CustomerTag(customer_id=customer.id, tag=tag, tenant_id=customer.tenant_id))
    if remove_set:
        session.execute(
            sa.delete(CustomerTag).where(
                CustomerTag.customer_id == customer.id, CustomerTag.tag.in_(remove_set)
            )
        )
    session.flush()
    return TagChange(tuple(sorted(add_set)), tuple(sorted(remove_set)))


def record_change(
    session: Session,
    customer: Customer,
    now: datetime,
    *,
    key: str,
    cause: str,
    tags: TagChange | None = None,
    fields: Mapping[str, Any] | None = None,
    depth: int = 0,
    causation_id: int | None = None,
    **detail: Any,
) -> Event | None:
    """Automation changed the customer's data: one ``customer.updated`` event says
    what, so the evaluate step (journeys, SOP rules) and plugins (a CRM, WeCom
    corp tags) react. ``key`` makes a re-run of the same change a no-op.  The
    one builder of that event: every automated change goes through here."""
    if not tags and not fields:
        return None
    payload: dict[str, Any] = {"cause": cause, **detail}
    if tags is not None:
        payload.update(tags_added=list(tags.added), tags_removed=list(tags.removed))
    if fields is not None:
        payload["fields"] = dict(fields)
    exists = session.scalar(
        sa.select(Event.id).where(Event.tenant_id == customer.tenant_id, Event.idempotency_key == key)
    )
    if exists:
        return None
    event = Event(
        tenant_id=customer.tenant_id,
        customer_id=customer.id,
        type="customer.updated",
        idempotency_key=key,
        occurred_at=now,
        received_at=now,
        source="sopflow",
        payload=payload,
        causation_id=causation_id,
        depth=depth,
    )
    session.add(event)
    session.flush()
    return event


def validate_customer_input(
    data: Mapping[str, Any], defs: Mapping[str, FieldDef]
) -> tuple[dict[str, Any], list[tuple[str, str]]]:
    """``data`` checked as a customer's fields, tags, time zone and identities:
    the fields in their stored form, and every problem found."""
    stored, problems = validate_field_changes(data.get("fields") or {}, defs)
    problems += check_tags(data.get("tags") or [], "tags")
    # the API's body schema checks these too; the console's forms reach the engine directly
    problems += check_tags(data.get("tags_add") or [], "tags_add")
    problems += check_tags(data.get("tags_remove") or [], "tags_remove")
    name = data.get("display_name")
    if name is not None and (not isinstance(name, str) or len(name) > MAX_NAME or "\x00" in name):
        problems.append(("display_name", f"a name of at most {MAX_NAME} characters, without NUL"))
    if data.get("timezone"):
        try:
            check_timezone(data["timezone"])
        except InvalidInput as exc:
            problems += [(e["field"], e["message"]) for e in exc.errors]
    for i, ident in enumerate(data.get("identities") or []):
        for key in ("channel", "external_id"):
            value = ident.get(key) if isinstance(ident, Mapping) else None
            if not isinstance(value, str) or not value.strip() or len(value) > 200:
                problems.append((f"identities[{i}].{key}", "a non-empty string of at most 200 characters"))
    return stored, problems


def create_customer(
    session: Session, tenant_id: int, data: Mapping[str, Any], defs: Mapping[str, FieldDef], now: datetime
) -> Customer:
    """Create a customer with its fields, tags and identities; ``InvalidInput``
    naming every problem (an identity another customer holds among them), and
    nothing written then."""
    stored, problems = validate_customer_input(data, defs)
    identities = list(data.get("identities") or [])
    if not problems:
        problems += identity_conflicts(session, tenant_id, identities)
    if problems:
        raise InvalidInput(problems)
    owner = None
    if data.get("owner_staff_external_id"):
        owner = staff_by_external_id(session, tenant_id, data["owner_staff_external_id"], now).id
    customer = Customer(
        tenant_id=tenant_id,
        display_name=data.get("display_name") or "",
        fields=apply_stored({}, stored),
        timezone=data.get("timezone"),
        source=data.get("source"),
        owner_staff_id=owner,
        created_at=now,
        updated_at=now,
    )
    session.add(customer)
    session.flush()
    for ident in identities:
        add_identity(
            session, customer, ident["channel"], ident["external_id"], now, ident.get("staff_external_id")
        )
        if ident.get("staff_external_id"):
            follow(session, customer, ident["channel"], ident["staff_external_id"], now)
    change_tags(session, customer, add=data.get("tags") or [])
    return customer


def update_customer(
    session: Session, customer: Customer, data: Mapping[str, Any], defs: Mapping[str, FieldDef], now: datetime
) -> Customer:
    """Apply a partial update (display name, time zone, source, owner, fields,
    tags, identities) after checking all of it; ``InvalidInput`` and nothing
    changed when any part is wrong."""
    stored, problems = validate_customer_input(data, defs)
    problems += identity_conflicts(
        session, customer.tenant_id, list(data.get("identities") or []), customer.id
    )
    if problems:
        raise InvalidInput(problems)
    if "display_name" in data and data["display_name"] is not None:
        customer.display_name = data["display_name"]
    if "timezone" in data:
        customer.timezone = data["timezone"] or None
    if "source" in data:
        customer.source = data["source"] or None
    if stored:
        customer.fields = apply_stored(customer.fields, stored)
    for ident in data.get("identities") or []:
        if not identity_conflicts(session, customer.tenant_id, [ident], customer.id) and not session.scalar(
            sa.select(ChannelIdentity.id).where(
                ChannelIdentity.tenant_id == customer.tenant_id,
                ChannelIdentity.channel == ident["channel"],
                ChannelIdentity.external_id == ident["external_id"],
            )
        ):
            add_identity(
                session, customer, ident["channel"], ident["external_id"], now, ident.get("staff_external_id")
            )
            if ident.get("staff_external_id"):
                follow(session, customer, ident["channel"], ident["staff_external_id"], now)
    change_tags(session, customer, add=data.get("tags_add") or [], remove=data.get("tags_remove") or [])
    customer.updated_at = now
    session.flush()
    return customer


def merge_customers(
    session: Session, tenant_id: int, survivor_id: int, other_id: int, now: datetime
) -> Customer:
    """Fold ``other`` into ``survivor``: identities, relations, tags, missing field values,
    stage placements and the event history move; ``other`` stays as a tombstone
    pointing at the survivor so old references resolve."""
    survivor = get_customer(session, tenant_id, survivor_id, lock=True)
    other = get_customer(session, tenant_id, other_id, lock=True)
    if survivor_id == other_id:
        raise InvalidInput([("other_customer_id", "cannot merge a customer into itself")])
    if other.merged_into_id is not None:
        raise Conflict(f"customer {other_id} is already merged")
    session.execute(
        sa.update(ChannelIdentity)
        .where(ChannelIdentity.customer_id == other.id)
        .values(customer_id=survivor.id)
    )
    merge_relations(session, survivor, other)
    change_tags(session, survivor, add=tags_of(session, other.id))
    session.execute(sa.delete(CustomerTag).where(CustomerTag.customer_id == other.id))
    survivor.fields = {**other.fields, **survivor.fields}
    survivor.owner_staff_id = survivor.owner_staff_id or other.owner_staff_id
    survivor.source = survivor.source or other.source
    survivor.timezone = survivor.timezone or other.timezone
    placed = set(
        session.scalars(sa.select(CustomerStage.pipeline_id).where(CustomerStage.customer_id == survivor.id))
    )
    for cs in session.scalars(sa.select(CustomerStage).where(CustomerStage.customer_id == other.id)):
        if cs.pipeline_id not in placed:
            session.add(
                CustomerStage(
                    customer_id=survivor.id,
                    pipeline_id=cs.pipeline_id,
                    tenant_id=tenant_id,
                    stage_id=cs.stage_id,
                    entered_at=cs.entered_at,
                )
            )
        session.delete(cs)
    session.execute(
        sa.update(StageHistory).where(StageHistory.customer_id == other.id).values(customer_id=survivor.id)
    )
    session.execute(sa.update(Event).where(Event.customer_id == other.id).values(customer_id=survivor.id))
    other.merged_into_id = survivor.id
    other.updated_at = survivor.updated_at = now
    session.flush()
    return survivor


def customer_to_dict(session: Session, customer: Customer) -> dict[str, Any]:
    """A customer as the API shows it: fields, tags, identities (with their
    staff member), and its stage in each pipeline."""
    identities = session.scalars(
        sa.select(ChannelIdentity)
        .where(ChannelIdentity.customer_id == customer.id)
        .order_by(ChannelIdentity.id)
    )
    staff_ext = {}
    stages = session.execute(
        sa.select(CustomerStage.pipeline_id, CustomerStage.stage_id, CustomerStage.entered_at).where(
            CustomerStage.customer_id == customer.id
        )
    ).all()
    out_idents = []
    for ident in identities:
        if ident.staff_id and ident.staff_id not in staff_ext:
            staff = session.get(Staff, ident.staff_id)
            staff_ext[ident.staff_id] = staff.external_id if staff else None
        out_idents.append(
            {
                "channel": ident.channel,
                "external_id": ident.external_id,
                "staff_external_id": staff_ext.get(ident.staff_id),
            }
        )
    return {
        "id": customer.id,
        "display_name": customer.display_name,
        "fields": customer.fields,
        "tags": tags_of(session, customer.id),
        "identities": out_idents,
        "relations": relations_of(session, customer.id),
        "timezone": customer.timezone,
        "source": customer.source,
        "owner_staff_id": customer.owner_staff_id,
        "churned": customer.churned_at is not None,
        "churned_at": customer.churned_at.isoformat() if customer.churned_at else None,
        "stages": [{"pipeline_id": p, "stage_id": s, "entered_at": e.isoformat()} for p, s, e in stages],
        "created_at": customer.created_at.isoformat(),
        "updated_at": customer.updated_at.isoformat(),
    }

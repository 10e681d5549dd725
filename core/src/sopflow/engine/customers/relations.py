"""Relations: which staff members follow a customer, on which channel, since
when, how they were added and their remark.

A customer reached by several staff members (a WeCom external contact two
members added, a friend of two personal accounts) keeps one relation per
(staff member, channel).  The owner (``customers.owner_staff_id``) is the first
adder and a later relation never moves it.  A relation ends when the customer
deletes the member or the member the customer; the others stay, and the
customer counts as churned only when no relation is left.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from sopflow.conditions.storage import parse_instant
from sopflow.engine.customers.identities import staff_by_external_id
from sopflow.models import Customer, CustomerRelation, Staff

#: Event types that start (or renew) a relation with the event's staff member.
FOLLOW_EVENTS = frozenset({"customer.added", "customer.imported"})
#: Event types that end the relation with the event's staff member: the customer
#: deleted the member (WeCom ``del_follow_user``) or the member the customer.
UNFOLLOW_EVENTS = frozenset({"customer.churned", "customer.deleted_by_staff"})
MAX_RELATIONS = 1000
MAX_REMARK = 200
MAX_SOURCE = 100


def check_relations(raw: Any, path: str) -> tuple[list[dict[str, Any]], list[tuple[str, str]]]:
    """An event's ``relations`` (``[{staff_external_id, added_at?, source?, remark?}]``)
    in stored form, and the problems with them."""
    if raw is None:
        return [], []
    if not isinstance(raw, Sequence) or isinstance(raw, str) or len(raw) > MAX_RELATIONS:
        return [], [
            (path, f"a list of at most {MAX_RELATIONS} {{staff_external_id, added_at, source, remark}}")
        ]
    out, problems = [], []
    for i, rel in enumerate(raw):
        p = f"{path}[{i}]"
        if not isinstance(rel, Mapping):
            problems.append((p, "expected an object {staff_external_id, added_at, source, remark}"))
            continue
        staff = rel.get("staff_external_id")
        if not isinstance(staff, str) or not staff or len(staff) > 128:
            problems.append((f"{p}.staff_external_id", "the staff member's id, 1–128 characters"))
        added_at = None
        if rel.get("added_at") is not None:
            try:
                added_at = parse_instant(rel["added_at"])
            except ValueError as exc:
                problems.append((f"{p}.added_at", str(exc)))
        for key, limit in (("source", MAX_SOURCE), ("remark", MAX_REMARK)):
            v = rel.get(key)
            if v is not None and (not isinstance(v, str) or len(v) > limit):
                problems.append((f"{p}.{key}", f"a string of at most {limit} characters"))
        out.append({**rel, "added_at": added_at})
    return out, problems


def follow(
    session: Session,
    customer: Customer,
    channel: str,
    staff_external_id: str,
    now: datetime,
    *,
    added_at: datetime | None = None,
    source: str | None = None,
    remark: str | None = None,
) -> CustomerRelation:
    """Record that ``staff_external_id`` follows ``customer`` on ``channel``.  A known
    relation keeps its add time (a re-add after it ended starts it again) and takes
    a newer remark; the first relation makes its staff member the owner."""
    staff = staff_by_external_id(session, customer.tenant_id, staff_external_id, now)
    if customer.owner_staff_id is None:
        customer.owner_staff_id = staff.id
    rel = session.scalar(
        sa.select(CustomerRelation).where(
            CustomerRelation.customer_id == customer.id,
            CustomerRelation.staff_id == staff.id,
            CustomerRelation.channel == channel,
        )
    )
    if rel is None:
        rel = CustomerRelation(
            tenant_id=customer.tenant_id,
            customer_id=customer.id,
            staff_id=staff.id,
            channel=channel,
            added_at=added_at or now,
            source=source or None,
            remark=remark or None,
        )
        session.add(rel)
    elif rel.ended_at is not None and (added_at or now) >= rel.ended_at:
        rel.ended_at, rel.end_reason, rel.added_at = None, None, added_at or now
        rel.source, rel.remark = source or rel.source, remark or rel.remark
    else:
        rel.added_at = min(rel.added_at, added_at) if added_at else rel.added_at
        rel.source = rel.source or source or None
        rel.remark = remark if remark is not None else rel.remark
    session.flush()
    return rel


def unfollow(
    session: Session, customer: Customer, channel: str, staff_external_id: str, now: datetime, reason: str
) -> bool:
    """End the relation of ``staff_external_id`` with ``customer`` on ``channel``;
    whether the customer still has an active relation with anyone."""
    staff_id = session.scalar(
        sa.select(Staff.id).where(
            Staff.tenant_id == customer.tenant_id, Staff.external_id == staff_external_id
        )
    )
    if staff_id is not None:
        session.execute(
            sa.update(CustomerRelation)
            .where(
                CustomerRelation.customer_id == customer.id,
                CustomerRelation.staff_id == staff_id,
                CustomerRelation.channel == channel,
                CustomerRelation.ended_at.is_(None),
            )
            .values(ended_at=now, end_reason=reason)
        )
    active = session.scalar(
        sa.select(sa.func.count())
        .select_from(CustomerRelation)
        .where(CustomerRelation.customer_id == customer.id, CustomerRelation.ended_at.is_(None))
    )
    return bool(active)


def merge_relations(session: Session, survivor: Customer, other: Customer) -> None:
    """Move ``other``'s relations to ``survivor``; where both have one with the same
    staff member and channel, the survivor's stays and takes the earlier add time."""
    mine = {
        (r.staff_id, r.channel): r
        for r in session.scalars(
            sa.select(CustomerRelation).where(CustomerRelation.customer_id == survivor.id)
        )
    }
    for rel in session.scalars(sa.select(CustomerRelation).where(CustomerRelation.customer_id == other.id)):
        kept = mine.get((rel.staff_id, rel.channel))
        if kept is None:
            rel.customer_id = survivor.id
            continue
        kept.added_at = min(kept.added_at, rel.added_at)
        kept.source, kept.remark = kept.source or rel.source, kept.remark or rel.remark
        if rel.ended_at is None:
            kept.ended_at = kept.end_reason = None
        session.delete(rel)
    session.flush()


def relations_of(session: Session, customer_id: int) -> list[dict[str, Any]]:
    """A customer's relations as the API shows them, first adder first."""
    rows = session.execute(
        sa.select(CustomerRelation, Staff.external_id)
        .join(Staff, Staff.id == CustomerRelation.staff_id)
        .where(CustomerRelation.customer_id == customer_id)
        .order_by(CustomerRelation.added_at, CustomerRelation.id)
    ).all()
    return [
        {
            "staff_id": rel.staff_id,
            "staff_external_id": ext,
            "channel": rel.channel,
            "added_at": rel.added_at.isoformat(),
            "source": rel.source,
            "remark": rel.remark,
            "active": rel.ended_at is None,
            "ended_at": rel.ended_at.isoformat() if rel.ended_at else None,
            "end_reason": rel.end_reason,
        }
        for rel, ext in rows
    ]

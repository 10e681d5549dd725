"""A customer handed from one staff member to another (WeCom's 在职/离职继承).

A ``customer.transferred`` event says the channel finished the handover: its
identity names the customer and the taker (``staff_external_id``), its payload
the giver (``from_staff_external_id``).  Ingest then moves, in the event's
transaction: the giver's relation ends (``end_reason`` ``customer.transferred``)
and the taker's starts with its source and remark; the channel identity and,
when the giver owned the customer, the owner move to the taker.  Enrolments
need nothing: every step reads the owner when it is sent, so scheduled touches
go out from the taker.  A touch still waiting for the giver to confirm (a WeCom
mass-send task created under them) is marked ``readdress`` in its outcome; the
confirmation poll settles it (``delivery.confirmations``): sent if the giver
confirmed in time, else the task is cancelled and the touch scheduled again,
now from the taker — so it is sent once.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from sopflow.engine.customers.identities import staff_by_external_id
from sopflow.engine.customers.relations import follow, unfollow
from sopflow.models import ChannelIdentity, Customer, CustomerRelation, Staff, Touch
from sopflow.models.touch_status import TouchStatus

TRANSFER_EVENT = "customer.transferred"
#: a held touch's ``defer_reason``: its customer's owner left (``delivery.deliver``)
OWNER_LEFT = "owner_left"
#: the payload key naming the staff member the customer was handed over from
FROM_STAFF = "from_staff_external_id"


def check_transfer(ev: Mapping[str, Any], path: str) -> list[tuple[str, str]]:
    """The problems with a ``customer.transferred`` event (none for other types)."""
    if ev.get("type") != TRANSFER_EVENT:
        return []
    problems = []
    ident = ev.get("identity")
    taker = ident.get("staff_external_id") if isinstance(ident, Mapping) else None
    if not isinstance(taker, str) or not taker or len(taker) > 128:
        problems.append(
            (
                f"{path}.identity.staff_external_id",
                "the staff member who took the customer over, 1–128 characters",
            )
        )
    payload = ev.get("payload")
    giver = payload.get(FROM_STAFF) if isinstance(payload, Mapping) else None
    if not isinstance(giver, str) or not giver or len(giver) > 128:
        problems.append((f"{path}.payload.{FROM_STAFF}", "the staff member who handed the customer over"))
    elif giver == taker:
        problems.append((f"{path}.payload.{FROM_STAFF}", "the giver and the taker are the same staff member"))
    return problems


def transfer_customer(
    session: Session, customer: Customer, channel: str, giver: str, taker: str, when: datetime
) -> int:
    """Move the customer from ``giver`` to ``taker`` on ``channel``; returns how many
    touches waiting for the giver's confirmation were marked to be re-addressed."""
    old = session.scalar(
        sa.select(Staff).where(Staff.tenant_id == customer.tenant_id, Staff.external_id == giver)
    )
    new = staff_by_external_id(session, customer.tenant_id, taker, when)
    kept = None
    if old is not None:
        kept = session.scalar(
            sa.select(CustomerRelation).where(
                CustomerRelation.customer_id == customer.id,
                CustomerRelation.staff_id == old.id,
                CustomerRelation.channel == channel,
            )
        )
    follow(
        session,
        customer,
        channel,
        taker,
        when,
        source=kept.source if kept else None,
        remark=kept.remark if kept else None,
    )
    unfollow(session, customer, channel, giver, when, TRANSFER_EVENT)
    if old is None:
        return 0
    owned = customer.owner_staff_id == old.id
    if owned:
        customer.owner_staff_id = new.id
    session.execute(
        sa.update(ChannelIdentity)
        .where(
            ChannelIdentity.customer_id == customer.id,
            ChannelIdentity.channel == channel,
            ChannelIdentity.staff_id == old.id,
        )
        .values(staff_id=new.id)
    )
    if owned:  # touches held while the giver had left go out now, from the taker
        _release_held(session, [customer.id], when)
    # touches go out from the owner: only the giver's own waiting tasks move
    return _mark_readdress(session, customer.id, giver, taker, when) if owned else 0


def mark_left(session: Session, staff: Staff, left: bool, when: datetime) -> bool:
    """Mark ``staff`` as left (or back); whether anything changed.  While they are
    left, delivery holds their customers' touches (``owner_left``); a transfer
    releases each customer's."""
    if left == (staff.left_at is not None):
        return False
    staff.left_at = when if left else None
    if not left:  # back: their customers' held touches are due again
        owned = sa.select(Customer.id).where(Customer.owner_staff_id == staff.id)
        _release_held(session, owned, when)
    return True


def _release_held(session: Session, customer_ids: Any, when: datetime) -> None:
    session.execute(
        sa.update(Touch)
        .where(
            Touch.customer_id.in_(customer_ids),
            Touch.status == TouchStatus.SCHEDULED,
            Touch.defer_reason == OWNER_LEFT,
        )
        .values(due_at=when, defer_reason=None)
    )


def _mark_readdress(session: Session, customer_id: int, giver: str, taker: str, when: datetime) -> int:
    marked = 0
    for touch in session.scalars(
        sa.select(Touch)
        .where(Touch.customer_id == customer_id, Touch.status == TouchStatus.PENDING)
        .with_for_update()
    ):
        touch.outcome = {
            **(touch.outcome or {}),
            "readdress": {"from": giver, "to": taker, "at": when.isoformat()},
        }
        marked += 1
    return marked

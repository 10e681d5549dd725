"""Channel identities: which customer a channel's id (a WeCom external user id,
a phone number) stands for, and the staff member who serves them.  One
identity belongs to one customer; a customer may have many (merging moves them)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from sopflow.models import ChannelIdentity, Customer, Staff


def staff_by_external_id(session: Session, tenant_id: int, external_id: str, now: datetime) -> Staff:
    """Find a staff member by their channel id, creating them when first seen."""
    staff = session.scalar(
        sa.select(Staff).where(Staff.tenant_id == tenant_id, Staff.external_id == external_id)
    )
    if staff is None:
        staff = Staff(tenant_id=tenant_id, external_id=external_id, name=external_id[:100], created_at=now)
        session.add(staff)
        session.flush()
    return staff


def identity_conflicts(
    session: Session, tenant_id: int, identities: Sequence[Mapping[str, Any]], customer_id: int | None = None
) -> list[tuple[str, str]]:
    """The problems for ``identities`` that another customer than ``customer_id``
    already holds (one identity belongs to one customer)."""
    problems = []
    for i, ident in enumerate(identities):
        owner = session.scalar(
            sa.select(ChannelIdentity.customer_id).where(
                ChannelIdentity.tenant_id == tenant_id,
                ChannelIdentity.channel == ident["channel"],
                ChannelIdentity.external_id == ident["external_id"],
            )
        )
        if owner is not None and owner != customer_id:
            problems.append(
                (
                    f"identities[{i}]",
                    f"already belongs to customer {owner}; "
                    f"merge the two with POST /api/v1/customers/{owner}/merge",
                )
            )
    return problems


def add_identity(
    session: Session,
    customer: Customer,
    channel: str,
    external_id: str,
    now: datetime,
    staff_external_id: str | None = None,
) -> None:
    """Give ``customer`` a channel identity (and its owner, the staff member with
    ``staff_external_id``, when it has none yet)."""
    staff_id = None
    if staff_external_id:
        staff_id = staff_by_external_id(session, customer.tenant_id, staff_external_id, now).id
        if customer.owner_staff_id is None:
            customer.owner_staff_id = staff_id
    # a Core INSERT (nobody needs the object): the unique identity is checked here and now
    session.execute(
        sa.insert(ChannelIdentity.__table__).values(
            tenant_id=customer.tenant_id,
            customer_id=customer.id,
            channel=channel,
            external_id=external_id,
            staff_id=staff_id,
            created_at=now,
        )
    )


#: Identity channels that name one person across channels, strongest first: when
#: an event's shared keys point at two different customers, the first one here wins.
#: WeChat's ``unionid`` is issued per person by the open platform; a phone number
#: can be shared by a household or given to someone else, so it comes second.
SHARED_KEYS = ("unionid", "phone")


def holder_id(session: Session, tenant_id: int, channel: str, external_id: str) -> int | None:
    """The id of the customer holding the identity, if any."""
    return session.scalar(
        sa.select(ChannelIdentity.customer_id).where(
            ChannelIdentity.tenant_id == tenant_id,
            ChannelIdentity.channel == channel,
            ChannelIdentity.external_id == external_id,
        )
    )


def _holder(session: Session, tenant_id: int, channel: str, external_id: str) -> Customer | None:
    """The (unmerged) customer holding the identity, if any."""
    customer_id = holder_id(session, tenant_id, channel, external_id)
    if customer_id is None:
        return None
    customer = session.get(Customer, customer_id)
    assert customer is not None
    while customer.merged_into_id is not None:  # identities move on merge; belt and braces
        customer = session.get(Customer, customer.merged_into_id)
        assert customer is not None
    return customer


def shared_key_holder(
    session: Session, tenant_id: int, shared: Sequence[Mapping[str, str]]
) -> Customer | None:
    """The customer the strongest known shared key (``SHARED_KEYS`` order) names."""
    for channel in SHARED_KEYS:
        for ident in shared:
            if ident["channel"] == channel:
                holder = _holder(session, tenant_id, channel, ident["external_id"])
                if holder is not None:
                    return holder
    return None


def absent_identities(
    session: Session, tenant_id: int, named: Sequence[Sequence[tuple[str, str]]], chunk: int = 250
) -> set[tuple[str, str]]:
    """Of the (channel, external id) pairs ``named`` (one list per event), those no
    customer holds: a batch's identity reads in a few statements.  A hint only,
    true when read: :func:`resolve_identity` drops each pair it gives out."""
    pairs = sorted({pair for pairs in named for pair in pairs})
    held: set[tuple[str, str]] = set()
    for start in range(0, len(pairs), chunk):
        part = pairs[start : start + chunk]
        held.update(
            (channel, external_id)
            for channel, external_id in session.execute(
                sa.select(ChannelIdentity.channel, ChannelIdentity.external_id).where(
                    ChannelIdentity.tenant_id == tenant_id,
                    sa.tuple_(ChannelIdentity.channel, ChannelIdentity.external_id).in_(part),
                )
            )
        )
    return set(pairs) - held


def resolve_identity(
    session: Session,
    tenant_id: int,
    channel: str,
    external_id: str,
    now: datetime,
    staff_external_id: str | None = None,
    display_name: str | None = None,
    shared: Sequence[Mapping[str, str]] = (),
    *,
    absent: set[tuple[str, str]] | None = None,
) -> tuple[Customer, bool]:
    """The customer behind a channel identity, created when first seen.  An
    identity seen for the first time lands on the customer a shared key
    (``shared``: unionid, phone) already names; the shared keys nobody holds yet
    are given to the customer.  ``absent`` (:func:`absent_identities`) spares the
    reads of identities known to be held by nobody; the ones given out leave it."""
    absent = absent if absent is not None else set()

    def holder(channel: str, external_id: str) -> Customer | None:
        if (channel, external_id) in absent:
            return None
        return _holder(session, tenant_id, channel, external_id)

    def give(channel: str, external_id: str, staff: str | None = None) -> None:
        absent.discard((channel, external_id))
        add_identity(session, customer, channel, external_id, now, staff)

    customer = holder(channel, external_id)
    created = False
    if customer is None:
        customer = (
            None
            if all((k["channel"], k["external_id"]) in absent for k in shared)
            else (shared_key_holder(session, tenant_id, shared))
        )
        if customer is None:
            customer = Customer(
                tenant_id=tenant_id,
                display_name=display_name or "",
                fields={},
                created_at=now,
                updated_at=now,
            )
            session.add(customer)
            session.flush()
            created = True
        give(channel, external_id, staff_external_id)
    for ident in shared:
        if holder(ident["channel"], ident["external_id"]) is None:
            give(ident["channel"], ident["external_id"])
    return customer, created

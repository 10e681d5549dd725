"""What a plugin may do to customers inside its ``host.transaction``, beyond
ingesting events: find a customer by a field's value, and link or unlink one of
its channel identities.  A CRM connector needs these to match a record to a
customer who arrived through another channel (same e-mail or phone) and to
forget a record deleted in the CRM while keeping the customer.

It sits in the host layer (it uses the engine); ``HostTransaction`` delegates to it.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sopflow_sdk import FatalError, Identity
from sqlalchemy.orm import Session

from sopflow.engine.customers.fields import create_field_definition, field_definitions
from sopflow.engine.customers.identities import add_identity, identity_conflicts
from sopflow.errors import InvalidInput
from sopflow.models import ChannelIdentity, Customer
from sopflow.plugins import PluginSystem


class TransactionCustomers:
    """Customer operations on one transaction's session, for one tenant."""

    def __init__(self, session: Session, tenant_id: int, now: datetime) -> None:
        self.session, self.tenant_id, self.now = session, tenant_id, now

    def find(self, field: str, value: str) -> list[int]:
        """Ids of the tenant's (unmerged) customers whose field ``field`` is ``value``."""
        rows = self.session.scalars(
            sa.select(Customer.id)
            .where(
                Customer.tenant_id == self.tenant_id,
                Customer.merged_into_id.is_(None),
                Customer.fields[field].as_string() == value,
            )
            .order_by(Customer.id)
        )
        return list(rows)

    def owner(self, identity: Identity) -> int | None:
        return self.session.scalar(
            sa.select(ChannelIdentity.customer_id).where(
                ChannelIdentity.tenant_id == self.tenant_id,
                ChannelIdentity.channel == identity.channel,
                ChannelIdentity.external_id == identity.external_id,
            )
        )

    def link(self, customer_id: int, identity: Identity) -> None:
        customer = self.session.get(Customer, customer_id)
        if customer is None or customer.tenant_id != self.tenant_id:
            raise FatalError(f"customer {customer_id} does not exist in tenant {self.tenant_id}")
        ident = {"channel": identity.channel, "external_id": identity.external_id}
        problems = identity_conflicts(self.session, self.tenant_id, [ident], customer_id)
        if problems:
            raise FatalError(f"{identity.channel}:{identity.external_id} {problems[0][1]}")
        if self.owner(identity) is None:
            add_identity(self.session, customer, identity.channel, identity.external_id, self.now)

    def unlink(self, identity: Identity) -> int | None:
        owner = self.owner(identity)
        if owner is not None:
            self.session.execute(
                sa.delete(ChannelIdentity).where(
                    ChannelIdentity.tenant_id == self.tenant_id,
                    ChannelIdentity.channel == identity.channel,
                    ChannelIdentity.external_id == identity.external_id,
                )
            )
        return owner


def define_fields(
    session: Session, tenant_id: int, plugins: PluginSystem, now: datetime, specs: Any
) -> list[str]:
    """Create the tenant fields in ``specs`` that do not exist yet; the keys created.
    ``InvalidInput`` (nothing created) when a key exists with another type."""
    existing = field_definitions(session, tenant_id, plugins)
    problems = [
        (f"fields.{s.key}", f"already defined as {existing[s.key].type}, not {s.type}")
        for s in specs
        if s.key in existing and existing[s.key].type != s.type
    ]
    if problems:
        raise InvalidInput(problems)
    created = []
    for s in specs:
        if s.key not in existing:
            create_field_definition(
                session,
                tenant_id,
                plugins,
                now,
                key=s.key,
                type=s.type,
                label=s.label,
                choices=list(s.choices),
                description=s.description,
            )
            created.append(s.key)
    return created

"""Plugin state for stand-in hosts in unit tests (no sopflow app needed).

``LocalState`` gives a test's fake ``Host`` the ``state`` and ``transaction``
methods: values live in a dict, the plugin's own tables in an in-memory SQLite
database (``metadata.create_all``), and a transaction that raises undoes both,
as core does.  Customers the test adds (``add_customer``) can be found by a
field and given or stripped of identities inside a transaction, like
``find_customers`` / ``link_identity`` / ``unlink_identity`` on core's host;
the transaction's ``ingest`` routes an event to the customer holding its
identity.  Tests that need the real thing use the ``sopflow_app`` fixture.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

import sqlalchemy as sa
from sqlalchemy.pool import StaticPool

from sopflow_sdk.errors import FatalError
from sopflow_sdk.specs import Identity, IngestEvent


class MemoryState:
    """A ``PluginState`` over a dict (one tenant's slice of ``LocalState.values``)."""

    def __init__(self, values: dict[str, Any]) -> None:
        self.values = values

    def get(self, key: str, default: Any = None, *, lock: bool = False) -> Any:
        """The value under ``key``, or ``default``."""
        return copy.deepcopy(self.values.get(key, default))

    def set(self, key: str, value: Any) -> None:
        """Store ``value`` (round-tripped through JSON, as core stores it)."""
        self.values[key] = json.loads(json.dumps(value, allow_nan=False))

    def add(self, key: str, value: Any) -> bool:
        """Store ``value`` only when ``key`` is absent; whether it was stored."""
        if key in self.values:
            return False
        self.set(key, value)
        return True

    def delete(self, key: str) -> bool:
        """Remove ``key``; ``True`` when it was there."""
        return self.values.pop(key, None) is not None

    def items(self, prefix: str = "") -> dict[str, Any]:
        """Every key starting with ``prefix``, in key order."""
        return {k: copy.deepcopy(v) for k, v in sorted(self.values.items()) if k.startswith(prefix)}


class LocalCustomers:
    """One tenant's customers in ``LocalState``: fields, and identities by (channel, external id)."""

    def __init__(self, fields: dict[int, dict[str, Any]], identities: dict[str, int], tenant_id: int) -> None:
        self.fields, self.identities, self.tenant_id = fields, identities, tenant_id

    @staticmethod
    def key(identity: Identity) -> str:
        return f"{identity.channel}:{identity.external_id}"

    def find(self, field: str, value: str) -> list[int]:
        # core compares the stored value as text: only text values can match
        return sorted(
            cid for cid, f in self.fields.items() if isinstance(f.get(field), str) and f[field] == value
        )

    def link(self, customer_id: int, identity: Identity) -> None:
        if customer_id not in self.fields:
            raise FatalError(f"customer {customer_id} does not exist in tenant {self.tenant_id}")
        owner = self.identities.get(self.key(identity))
        if owner is not None and owner != customer_id:
            raise FatalError(f"{self.key(identity)} already belongs to customer {owner}")
        self.identities[self.key(identity)] = customer_id

    def unlink(self, identity: Identity) -> int | None:
        return self.identities.pop(self.key(identity), None)


class LocalTransaction:
    """A ``PluginTransaction`` on ``LocalState``."""

    def __init__(
        self,
        tenant_id: int,
        state: MemoryState,
        connection: sa.Connection,
        ingest: Callable[..., Any],
        customers: LocalCustomers,
    ) -> None:
        self.tenant_id, self.state, self.connection, self._ingest = tenant_id, state, connection, ingest
        self._customers = customers

    def ingest(self, events: Sequence[IngestEvent]) -> list[Mapping[str, Any]]:
        """Hand ``events`` to the stand-in host's ingest; an outcome without a
        ``customer_id`` gets the id of the customer holding the event's identity."""
        out = []
        for event, outcome in zip(events, self._ingest(self.tenant_id, events), strict=True):
            owner = self._customers.identities.get(LocalCustomers.key(event.identity))
            out.append({"customer_id": owner, **outcome} if owner is not None else outcome)
        return out

    def find_customers(self, field: str, value: str) -> list[int]:
        """Ids of the tenant's customers whose field ``field`` holds ``value``."""
        return self._customers.find(field, value)

    def link_identity(self, customer_id: int, identity: Identity) -> None:
        """Give ``customer_id`` the identity; ``FatalError`` when another customer holds it
        or the customer does not exist."""
        self._customers.link(customer_id, identity)

    def unlink_identity(self, identity: Identity) -> int | None:
        """Remove the identity; the customer who held it (kept), or ``None``."""
        return self._customers.unlink(identity)


class LocalState:
    """``state(tenant_id)`` and ``transaction(tenant_id)`` for a stand-in ``Host``.

    ``metadata`` (the plugin's tables) is created in a private in-memory SQLite
    database; ``ingest(tenant_id, events)`` is what ``tx.ingest`` calls."""

    def __init__(self, metadata: Any = None, ingest: Callable[..., Any] | None = None) -> None:
        self.engine = sa.create_engine("sqlite://", poolclass=StaticPool)
        if metadata is not None:
            metadata.create_all(self.engine)
        self.values: dict[int, dict[str, Any]] = {}
        #: tenant → customer id → fields, and tenant → "channel:external_id" → customer id
        self.customers: dict[int, dict[int, dict[str, Any]]] = {}
        self.identities: dict[int, dict[str, int]] = {}
        self._ingest = ingest or (lambda tenant_id, events: [{"status": "created"} for _ in events])

    def state(self, tenant_id: int) -> MemoryState:
        """The tenant's values."""
        return MemoryState(self.values.setdefault(tenant_id, {}))

    def add_customer(
        self, tenant_id: int, fields: Mapping[str, Any] | None = None, identities: Sequence[Identity] = ()
    ) -> int:
        """A customer of the tenant for ``find_customers`` and ``link_identity``; its id."""
        people = self.customers.setdefault(tenant_id, {})
        customer_id = max((cid for t in self.customers.values() for cid in t), default=0) + 1
        people[customer_id] = dict(fields or {})
        for identity in identities:
            LocalCustomers(people, self.identities.setdefault(tenant_id, {}), tenant_id).link(
                customer_id, identity
            )
        return customer_id

    def identity_owner(self, tenant_id: int, identity: Identity) -> int | None:
        """The customer holding ``identity``, or ``None``."""
        return self.identities.get(tenant_id, {}).get(LocalCustomers.key(identity))

    @contextmanager
    def transaction(self, tenant_id: int) -> Iterator[LocalTransaction]:
        """Values, identities and tables together: all are put back if the block raises."""
        before = copy.deepcopy((self.values, self.identities))
        customers = LocalCustomers(
            self.customers.setdefault(tenant_id, {}), self.identities.setdefault(tenant_id, {}), tenant_id
        )
        try:
            with self.engine.begin() as connection:
                yield LocalTransaction(tenant_id, self.state(tenant_id), connection, self._ingest, customers)
        except BaseException:
            self.values.clear()
            self.values.update(before[0])
            self.identities.clear()
            self.identities.update(before[1])
            raise

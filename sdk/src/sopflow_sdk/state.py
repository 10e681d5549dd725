"""What a plugin keeps between runs: a per-tenant key-value store and a unit of work.

``host.state(tenant_id)`` gives a ``PluginState``: small JSON values (cursors,
watermarks, account state) under string keys, scoped to the calling plugin and
one tenant, so no plugin reads another's.  Each call outside a transaction is
its own transaction.

``host.transaction(tenant_id)`` gives a ``PluginTransaction``: events ingested,
state written and the plugin's own tables changed through ``connection`` all
commit together or not at all, so a cursor never runs ahead of the events it
covers nor stays behind events that were stored.  Plugins observe and SOPs
evaluate the new events after the commit.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from sopflow_sdk.specs import Identity, IngestEvent

#: A key is 1-200 characters; the plugin chooses its shape (``archive.seq.12``).
MAX_STATE_KEY = 200
#: A value is JSON of at most this many bytes: the store is for cursors, not documents
#: (keep larger things in the plugin's own tables).
MAX_STATE_VALUE = 64 * 1024


class PluginState(Protocol):
    """One plugin's key-value state for one tenant.  Values are JSON (``None``,
    bool, numbers, strings, lists, objects); they come back as JSON decodes them."""

    def get(self, key: str, default: Any = None, *, lock: bool = False) -> Any:
        """The value under ``key``, or ``default``.  ``lock=True`` (inside a
        transaction) holds the row until the commit (``SELECT … FOR UPDATE`` on
        Postgres), so two workers advancing one cursor take turns."""
        ...

    def set(self, key: str, value: Any) -> None:
        """Store ``value`` under ``key`` (insert or replace)."""
        ...

    def add(self, key: str, value: Any) -> bool:
        """Store ``value`` under ``key`` only when the key is absent; whether this call
        stored it.  Two processes racing to create a key: exactly one wins (then
        ``get(key, lock=True)`` has a row to lock)."""
        ...

    def delete(self, key: str) -> bool:
        """Remove ``key``; ``True`` when it was there."""
        ...

    def items(self, prefix: str = "") -> dict[str, Any]:
        """Every key starting with ``prefix`` and its value, in key order."""
        ...


class PluginTransaction(Protocol):
    """One unit of work for one tenant: ingest, state and the plugin's own tables."""

    tenant_id: int
    #: this plugin's state for the tenant, written in this transaction
    state: PluginState
    #: the ``sqlalchemy.Connection`` of this transaction, for the plugin's own tables
    #: (``connection.execute(my_table.insert()…)``, or ``Session(bind=connection)``)
    connection: Any

    def ingest(self, events: Sequence[IngestEvent]) -> list[Mapping[str, Any]]:
        """Ingest ``events`` in this transaction (outcomes as ``Host.ingest``).  A bad
        event raises and, unless caught, rolls back everything done in the block."""
        ...

    def find_customers(self, field: str, value: str) -> list[int]:
        """Ids of the tenant's customers whose field ``field`` holds ``value`` (matching a
        CRM record to a customer who came through another channel, by e-mail or phone)."""
        ...

    def link_identity(self, customer_id: int, identity: Identity) -> None:
        """Give the customer this channel identity, so events for it reach them; raises
        ``FatalError`` when another customer holds it."""
        ...

    def unlink_identity(self, identity: Identity) -> int | None:
        """Remove the identity (the customer stays); the id of who held it, or ``None``."""
        ...

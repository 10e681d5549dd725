"""Plugin state on ``Host``: the key-value store and the unit of work behind
``host.state(tenant_id)`` and ``host.transaction(tenant_id)`` (``sopflow_sdk.state``).

A ``TenantState`` is bound to one plugin and one tenant when the host makes it;
no call takes a plugin name, so a plugin cannot address another's keys.  It
works over a session given by ``session_scope``: the transaction's own session
inside ``host.transaction``, a fresh transaction per call otherwise.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sopflow_sdk import Identity as IngestIdentity
from sopflow_sdk import IngestEvent, PluginError
from sopflow_sdk.state import MAX_STATE_KEY, MAX_STATE_VALUE
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from sopflow.models import PluginStateEntry

SessionScope = Callable[[], AbstractContextManager[Session]]


class TenantState:
    """One plugin's state for one tenant (implements ``sopflow_sdk.PluginState``)."""

    def __init__(
        self, plugin: str, tenant_id: int, session_scope: SessionScope, now: Callable[[], datetime]
    ) -> None:
        self.plugin = plugin
        self.tenant_id = tenant_id
        self._scope = session_scope
        self._now = now

    def __repr__(self) -> str:
        return f"<TenantState plugin={self.plugin!r} tenant={self.tenant_id}>"

    def _where(self) -> list[Any]:
        return [PluginStateEntry.plugin == self.plugin, PluginStateEntry.tenant_id == self.tenant_id]

    def _check_key(self, key: Any) -> str:
        if not isinstance(key, str) or not 0 < len(key) <= MAX_STATE_KEY:
            raise PluginError(
                f"plugin '{self.plugin}' used state key {key!r}; give a string of 1-{MAX_STATE_KEY} "
                "characters, e.g. 'archive.seq.12'"
            )
        return key

    def get(self, key: str, default: Any = None, *, lock: bool = False) -> Any:
        """The value under ``key``, or ``default``; ``lock`` holds the row until commit."""
        query = sa.select(PluginStateEntry.value).where(
            *self._where(), PluginStateEntry.key == self._check_key(key)
        )
        if lock:
            query = query.with_for_update()
        with self._scope() as session:
            row = session.execute(query).first()
        return default if row is None else row[0]

    def set(self, key: str, value: Any) -> None:
        """Insert or replace ``key``'s value (JSON, at most ``MAX_STATE_VALUE`` bytes)."""
        row = self._row(key, value)
        with self._scope() as session:
            statement = _insert(session).values(**row)
            session.execute(
                statement.on_conflict_do_update(
                    index_elements=["plugin", "tenant_id", "key"],
                    set_={"value": statement.excluded.value, "updated_at": statement.excluded.updated_at},
                )
            )

    def add(self, key: str, value: Any) -> bool:
        """Insert ``key`` only when absent; whether this call inserted it (a claim
        two processes can race for: exactly one wins).  The value is checked as by ``set``."""
        row = self._row(key, value)
        with self._scope() as session:
            statement = _insert(session).values(**row).on_conflict_do_nothing()
            return session.execute(statement.returning(PluginStateEntry.key)).first() is not None

    def _row(self, key: str, value: Any) -> dict[str, Any]:
        """The row for ``key`` and ``value``, checked before anything is written: JSON, and small."""
        self._check_key(key)
        try:
            encoded = json.dumps(value, allow_nan=False, ensure_ascii=False)
        except (TypeError, ValueError) as exc:
            raise PluginError(
                f"plugin '{self.plugin}' state '{key}': the value is not JSON ({exc}); "
                "store numbers, strings, booleans, lists and objects"
            ) from None
        if len(encoded.encode()) > MAX_STATE_VALUE:
            raise PluginError(
                f"plugin '{self.plugin}' state '{key}': the value is over {MAX_STATE_VALUE} bytes; "
                "keep large data in the plugin's own tables (MigrationsSpec)"
            )
        return {
            "plugin": self.plugin,
            "tenant_id": self.tenant_id,
            "key": key,
            "value": json.loads(encoded),
            "updated_at": self._now(),
        }

    def delete(self, key: str) -> bool:
        """Remove ``key``; ``True`` when it was there."""
        query = sa.delete(PluginStateEntry).where(
            *self._where(), PluginStateEntry.key == self._check_key(key)
        )
        with self._scope() as session:
            return bool(session.execute(query).rowcount)

    def items(self, prefix: str = "") -> dict[str, Any]:
        """Every key starting with ``prefix`` and its value, in key order."""
        query = (
            sa.select(PluginStateEntry.key, PluginStateEntry.value)
            .where(*self._where(), PluginStateEntry.key.startswith(prefix, autoescape=True))
            .order_by(PluginStateEntry.key)
        )
        with self._scope() as session:
            return {key: value for key, value in session.execute(query)}


class HostTransaction:
    """One plugin's unit of work for one tenant (implements ``sopflow_sdk.PluginTransaction``).

    ``ingest_in(session, events)`` is the host's ingest on this transaction's
    session; it returns the outcomes and the created events, which the host
    announces after the commit (``created``).
    """

    def __init__(
        self,
        plugin: str,
        tenant_id: int,
        session: Session,
        ingest_in: Callable[[Session, Sequence[IngestEvent]], tuple[list[dict[str, Any]], list[Any]]],
        now: Callable[[], datetime],
        customers: Any = None,
    ) -> None:
        self.tenant_id = tenant_id
        self.session = session
        self._customers = customers  # sopflow.plugin_customers.TransactionCustomers (host layer)
        self._ingest_in = ingest_in
        self.created: list[Any] = []
        self.state = TenantState(plugin, tenant_id, lambda: _same(session), now)

    @property
    def connection(self) -> sa.Connection:
        """The SQLAlchemy connection of this transaction, for the plugin's own tables."""
        return self.session.connection()

    def ingest(self, events: Sequence[IngestEvent]) -> list[Mapping[str, Any]]:
        """Ingest ``events`` in this transaction; they are announced after the commit."""
        outcomes, created = self._ingest_in(self.session, events)
        self.created += created
        return list(outcomes)

    def find_customers(self, field: str, value: str) -> list[int]:
        """Ids of the customers whose field ``field`` holds ``value``."""
        return self._customers.find(field, value)

    def link_identity(self, customer_id: int, identity: IngestIdentity) -> None:
        """Give ``customer_id`` the channel identity ``identity`` (refused if another holds it)."""
        self._customers.link(customer_id, identity)

    def unlink_identity(self, identity: IngestIdentity) -> int | None:
        """Remove the identity; the customer who held it (kept), or ``None``."""
        return self._customers.unlink(identity)


@contextmanager
def _same(session: Session) -> Iterator[Session]:
    yield session


def _insert(session: Any) -> Any:
    """The session's dialect's ``INSERT`` (both have ``ON CONFLICT``) into the state table."""
    insert = postgresql.insert if session.bind.dialect.name == "postgresql" else sqlite.insert
    return insert(PluginStateEntry)

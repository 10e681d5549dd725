"""Plugin state for stand-in hosts in unit tests (no sopflow app needed).

``LocalState`` gives a test's fake ``Host`` the ``state`` and ``transaction``
methods: values live in a dict, the plugin's own tables in an in-memory SQLite
database (``metadata.create_all``), and a transaction that raises undoes both,
as core does.  Tests that need the real thing use the ``sopflow_app`` fixture.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

import sqlalchemy as sa
from sqlalchemy.pool import StaticPool

from sopflow_sdk.specs import IngestEvent


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

    def delete(self, key: str) -> bool:
        """Remove ``key``; ``True`` when it was there."""
        return self.values.pop(key, None) is not None

    def items(self, prefix: str = "") -> dict[str, Any]:
        """Every key starting with ``prefix``, in key order."""
        return {k: copy.deepcopy(v) for k, v in sorted(self.values.items()) if k.startswith(prefix)}


class LocalTransaction:
    """A ``PluginTransaction`` on ``LocalState``."""

    def __init__(
        self, tenant_id: int, state: MemoryState, connection: sa.Connection, ingest: Callable[..., Any]
    ) -> None:
        self.tenant_id, self.state, self.connection, self._ingest = tenant_id, state, connection, ingest

    def ingest(self, events: Sequence[IngestEvent]) -> list[Mapping[str, Any]]:
        """Hand ``events`` to the stand-in host's ingest."""
        return list(self._ingest(self.tenant_id, events))


class LocalState:
    """``state(tenant_id)`` and ``transaction(tenant_id)`` for a stand-in ``Host``.

    ``metadata`` (the plugin's tables) is created in a private in-memory SQLite
    database; ``ingest(tenant_id, events)`` is what ``tx.ingest`` calls."""

    def __init__(self, metadata: Any = None, ingest: Callable[..., Any] | None = None) -> None:
        self.engine = sa.create_engine("sqlite://", poolclass=StaticPool)
        if metadata is not None:
            metadata.create_all(self.engine)
        self.values: dict[int, dict[str, Any]] = {}
        self._ingest = ingest or (lambda tenant_id, events: [{"status": "created"} for _ in events])

    def state(self, tenant_id: int) -> MemoryState:
        """The tenant's values."""
        return MemoryState(self.values.setdefault(tenant_id, {}))

    @contextmanager
    def transaction(self, tenant_id: int) -> Iterator[LocalTransaction]:
        """Values and tables together: both are put back if the block raises."""
        before = copy.deepcopy(self.values)
        try:
            with self.engine.begin() as connection:
                yield LocalTransaction(tenant_id, self.state(tenant_id), connection, self._ingest)
        except BaseException:
            self.values.clear()
            self.values.update(before)
            raise

"""A per-process cache of each tenant's configuration (field definitions,
switched-off plugins, started SOPs with their parsed rules, journeys and their
stages, the time zone), valid for one value of ``tenants.config_version``.

Evaluating an event or delivering a batch used to read the same configuration
rows again every time (a third of the statements the demo ran).  Now a
transaction reads the tenant's version once, and everything cached under that
version is reused until a change bumps it.

The bump needs no call at each change site: a ``before_flush`` listener bumps
the version of every tenant whose configuration rows the flush inserts,
updates or deletes, in the same transaction, so the very next event in every
process that reads the new version reloads.  Two rules keep the cache from ever
holding what a reader must not see:

* a transaction that changed configuration (or has such changes pending) never
  reads from or writes to the cache: its uncommitted rows must not leak into it;
* the version is read before the data, so a value cached under version *v* is
  never older than *v* (it may be newer, which the next bump corrects).

A new tenant's version starts at a random 62-bit number, not 0: a test
database truncated between tests re-creates tenants under the ids (and the
manual clock's instants) of the old ones, and must not find their entries.

Cached values are shared between threads and transactions: callers treat
them as read-only, and loaders cache rows as ``frozen_copy`` (an instance no
session owns) and collections as tuples, frozensets or copies.

Core statements issued through the ORM against a configuration table
(``session.execute(sa.update(Sop)…)``) bump every tenant; raw SQL is not seen:
change configuration through the ORM."""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.orm import ORMExecuteState, Session, sessionmaker

from sopflow.models import (
    ChannelAccount,
    FieldDefinition,
    Journey,
    JourneyStage,
    KeywordRule,
    Pipeline,
    Sop,
    SopVersion,
    Stage,
    Tenant,
    TenantPlugin,
)

T = TypeVar("T")

#: the rows whose change bumps their tenant's version
CONFIG_MODELS: tuple[type, ...] = (
    ChannelAccount,
    FieldDefinition,
    Journey,
    JourneyStage,
    KeywordRule,
    Pipeline,
    Sop,
    SopVersion,
    Stage,
    TenantPlugin,
)
_CONFIG_TABLES = frozenset(m.__table__.name for m in CONFIG_MODELS)  # type: ignore[attr-defined]
#: the tenant columns that are configuration (its name and settings are not read by the hot paths)
_TENANT_CONFIG = ("timezone", "settings")

_TENANTS: sa.Table = Tenant.__table__  # type: ignore[attr-defined]
_CACHE = "sopflow.config_cache"
_VERSION = "sopflow.config_version"
_CHANGED = "sopflow.config_changed"


class ConfigCache:
    """Values per tenant for the tenant's current version; a tenant's entries go
    as soon as a transaction reads a different version."""

    def __init__(self, max_tenants: int = 4096) -> None:
        self._lock = threading.Lock()
        self._entries: dict[int, tuple[int, dict[Hashable, Any]]] = {}
        self.max_tenants = max_tenants
        self.hits = self.misses = 0  # read by the tests

    def get(self, tenant_id: int, version: int, key: Hashable, load: Callable[[], T]) -> T:
        """The value cached for ``key`` at ``version``, else ``load()`` stored."""
        with self._lock:
            entry = self._entries.get(tenant_id)
            if entry is not None and entry[0] == version and key in entry[1]:
                self.hits += 1
                return entry[1][key]  # type: ignore[no-any-return]
        value = load()  # outside the lock: loading runs statements
        with self._lock:
            self.misses += 1
            entry = self._entries.get(tenant_id)
            if entry is None or entry[0] != version:
                if entry is None and len(self._entries) >= self.max_tenants:
                    self._entries.pop(next(iter(self._entries)))  # the oldest tenant seen
                entry = (version, {})
                self._entries[tenant_id] = entry
            entry[1][key] = value
        return value

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


def frozen_copy(obj: T) -> T:
    """A copy of a loaded row that belongs to no session, for a cached value: the
    loading session's rollback expires its own instances (and a detached expired
    instance cannot be read), and no session may ever flush a shared object."""
    if obj is None:
        return obj
    mapper = sa.inspect(type(obj))
    return type(obj)(**{a.key: getattr(obj, a.key) for a in mapper.column_attrs})  # type: ignore[no-any-return]


def cached(session: Session, tenant_id: int, key: Hashable, load: Callable[[], T]) -> T:
    """``load()`` through the session factory's cache, for ``tenant_id``'s current
    configuration version; straight ``load()`` when the session has no cache or
    its transaction changes configuration."""
    cache: ConfigCache | None = session.info.get(_CACHE)
    if cache is None:
        return load()
    if session.new or session.deleted or session.dirty:
        session.flush()  # what the loader's query would autoflush; it may mark a change
    txn = session.get_transaction()
    if txn is None or session.info.get(_CHANGED) is txn:
        return load()
    versions = session.info.get(_VERSION)
    if versions is None or versions[0] is not txn:
        versions = (txn, {})
        session.info[_VERSION] = versions
    version = versions[1].get(tenant_id)
    if version is None:
        version = session.scalar(sa.select(Tenant.config_version).where(Tenant.id == tenant_id))
        if version is None:  # no such tenant: nothing worth keeping
            return load()
        versions[1][tenant_id] = version
    return cache.get(tenant_id, version, key, load)


def install(factory: sessionmaker[Session], cache: ConfigCache | None = None) -> ConfigCache:
    """Give every session of ``factory`` the cache and the bump listeners."""
    cache = cache or ConfigCache()
    factory.kw["info"] = {**(factory.kw.get("info") or {}), _CACHE: cache}
    sa.event.listen(factory, "before_flush", _bump_changed)
    sa.event.listen(factory, "do_orm_execute", _bump_on_bulk)
    return cache


def _bump_changed(session: Session, _context: Any, _instances: Any) -> None:
    tenants: set[int] = set()
    for obj in (*session.new, *session.deleted, *session.dirty):
        if isinstance(obj, CONFIG_MODELS):
            if obj.tenant_id is not None:
                tenants.add(obj.tenant_id)
        elif isinstance(obj, Tenant) and obj.id is not None and obj not in session.new:
            state = sa.inspect(obj)
            if any(state.attrs[name].history.has_changes() for name in _TENANT_CONFIG):
                tenants.add(obj.id)
    if tenants:
        _bump(session, _TENANTS.c.id.in_(sorted(tenants)))


def _bump_on_bulk(state: ORMExecuteState) -> None:
    if not (state.is_update or state.is_delete or state.is_insert):
        return
    table = getattr(state.statement, "table", None)
    if table is not None and table.name in _CONFIG_TABLES:
        _bump(state.session, sa.true())


def _bump(session: Session, where: Any) -> None:
    # through the connection: a session.execute here would autoflush into this flush
    session.connection().execute(
        sa.update(_TENANTS).where(where).values(config_version=_TENANTS.c.config_version + 1)
    )
    session.info[_CHANGED] = session.get_transaction()

"""Test databases for the rule language: a SQLite file and, when
``SOPFLOW_TEST_POSTGRES_URL`` is set, a throw-away Postgres database; plus a bulk
loader that writes one generated tenant and its customers."""

from __future__ import annotations

import itertools
import os
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sopflow.conditions import CustomerSnapshot, resolve_timezone
from sopflow.models import Customer, CustomerStage, CustomerTag, Event, Pipeline, Stage, Tenant, metadata
from sqlalchemy.engine import make_url

CREATED = datetime(2025, 1, 1, tzinfo=UTC)
_keys = itertools.count()


def seed_pipelines(
    engine: sa.Engine, pipelines: tuple[int, ...], names: tuple[str, ...]
) -> dict[tuple[int, str], int]:
    """Tenant 1 owns the pipelines every generated tenant uses; returns stage ids."""
    with engine.begin() as conn:
        seed = conn.execute(
            sa.insert(Tenant.__table__).returning(Tenant.__table__.c.id),
            {"name": "seed", "timezone": "UTC", "settings": {}, "created_at": CREATED},
        ).scalar_one()
        for pid in pipelines:
            conn.execute(
                sa.insert(Pipeline.__table__),
                [{"id": pid, "tenant_id": seed, "name": f"p{pid}", "created_at": CREATED}],
            )
        stage_ids = {}
        for pid in pipelines:
            for pos, name in enumerate(names):
                sid = pid * 100 + pos
                conn.execute(
                    sa.insert(Stage.__table__),
                    [{"id": sid, "tenant_id": seed, "pipeline_id": pid, "name": name, "position": pos}],
                )
                stage_ids[(pid, name)] = sid
    return stage_ids


def load_tenant(
    engine: sa.Engine, tenant_tz: str, people: list[dict[str, Any]], stage_ids: dict[tuple[int, str], int]
) -> tuple[int, list[int]]:
    """Insert a tenant and its customers (tags, stages, events); returns (tenant id, customer ids)."""
    with engine.begin() as conn:
        tenant_id = conn.execute(
            sa.insert(Tenant.__table__).returning(Tenant.__table__.c.id),
            {"name": uuid.uuid4().hex, "timezone": tenant_tz, "settings": {}, "created_at": CREATED},
        ).scalar_one()
        if not people:
            return tenant_id, []
        table = Customer.__table__
        rows = [
            {
                "tenant_id": tenant_id,
                "display_name": "",
                "fields": p["fields"],
                "timezone": p["timezone"],
                "source": p["source"],
                "churned_at": CREATED if p["churned"] else None,
                "merged_into_id": None,
                "created_at": CREATED,
                "updated_at": CREATED,
            }
            for p in people
        ]
        ids = list(
            conn.execute(sa.insert(table).returning(table.c.id, sort_by_parameter_order=True), rows).scalars()
        )
        merged = [cid for cid, p in zip(ids, people, strict=True) if p["merged"]]
        if merged:
            conn.execute(sa.update(table).where(table.c.id.in_(merged)).values(merged_into_id=ids[0]))
        tags = [
            {"customer_id": cid, "tag": t, "tenant_id": tenant_id}
            for cid, p in zip(ids, people, strict=True)
            for t in p["tags"]
        ]
        if tags:
            conn.execute(sa.insert(CustomerTag.__table__), tags)
        stages = [
            {
                "customer_id": cid,
                "pipeline_id": pid,
                "tenant_id": tenant_id,
                "stage_id": stage_ids[(pid, name)],
                "entered_at": CREATED,
            }
            for cid, p in zip(ids, people, strict=True)
            for pid, name in p["stages"].items()
        ]
        if stages:
            conn.execute(sa.insert(CustomerStage.__table__), stages)
        events = [
            {
                "tenant_id": tenant_id,
                "customer_id": cid,
                "type": etype,
                "idempotency_key": f"k{next(_keys)}",
                "occurred_at": when,
                "received_at": when,
                "payload": {},
                "source": "test",
                "causation_id": None,
                "depth": 0,
            }
            for cid, p in zip(ids, people, strict=True)
            for etype, when in p["events"]
        ]
        if events:
            conn.execute(sa.insert(Event.__table__), events)
    return tenant_id, ids


def oracle_snapshot(person: dict[str, Any], tenant_tz: str) -> CustomerSnapshot:
    """The snapshot built from the generated data itself, independent of the database."""

    def counts(etype: str, since: datetime | None) -> int:
        return sum(1 for t, when in person["events"] if t == etype and (since is None or when >= since))

    return CustomerSnapshot(
        fields=person["fields"],
        tags=frozenset(person["tags"]),
        stages=dict(person["stages"]),
        churned=person["churned"],
        source=person["source"],
        timezone=resolve_timezone(person["timezone"], tenant_tz),
        event_counts=counts,
        merged=person["merged"],
    )


def sqlite_engine(path: str) -> sa.Engine:
    engine = sa.create_engine(f"sqlite:///{path}")
    metadata.create_all(engine)
    return engine


def postgres_engine() -> Iterator[sa.Engine | None]:
    """A fresh database ``sopflow_conditions_<random>``, dropped afterwards; ``None`` when unset."""
    url = os.environ.get("SOPFLOW_TEST_POSTGRES_URL")
    if not url:
        yield None
        return
    name = f"sopflow_conditions_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f"CREATE DATABASE \"{name}\" ENCODING 'UTF8' TEMPLATE template0")
    engine = sa.create_engine(make_url(url).set(database=name))
    try:
        metadata.create_all(engine)
        yield engine
    finally:
        engine.dispose()
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()

"""Benchmark: count a 5-rule OR-of-AND audience over N customers.

Loads N customers with realistic fields, tags, stages and events into a fresh
SQLite file or a throw-away Postgres database, builds the indexes docs/rules.md
recommends, then times ``count_customers`` (median of 3) and, for the ratio, the
naive way (load rows, evaluate each in Python) on a smaller slice.  Prints JSON.

    uv run python bench/rules_count.py --customers 100000 --backend sqlite
    uv run python bench/rules_count.py --backend postgres \\
        --postgres-url postgresql+psycopg://sopflow@127.0.0.1:55432/postgres
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import tempfile
import time
import uuid
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import sqlalchemy as sa
from sopflow.conditions import (
    CustomerSnapshot,
    count_customers,
    evaluate,
    parse,
    resolve_timezone,
    to_storage,
)
from sopflow.models import Customer, CustomerStage, CustomerTag, Event, Pipeline, Stage, Tenant, metadata
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

NOW = datetime(2026, 6, 30, 8, 0, tzinfo=UTC)
TZ = "Asia/Shanghai"
FIELDS = {
    "city": SimpleNamespace(type="choice", choices=("上海", "北京", "广州", "深圳", "成都")),
    "order_count": SimpleNamespace(type="number", choices=()),
    "vip": SimpleNamespace(type="bool", choices=()),
    "insurance_expires_on": SimpleNamespace(type="date", choices=()),
    "last_order_at": SimpleNamespace(type="datetime", choices=()),
    "interests": SimpleNamespace(type="multi_choice", choices=("护肤", "防晒霜", "教育", "保险")),
}
TAGS = ("拔牙", "防晒霜", "高意向", "价格敏感", "复购", "教育", "vip", "新客")
STAGES = ("激活", "兴趣", "孵化", "决策", "签单")
SOURCES = ("qr_spring", "qr_autumn", "form", "import", None)
AUDIENCE = {
    "any": [
        {"all": [{"tags": {"any_of": ["拔牙"]}}, {"field": "city", "op": "eq", "value": "上海"}]},
        {
            "all": [
                {"field": "order_count", "op": "gte", "value": 2},
                {"events": {"type": "order.paid", "min": 1, "within": "90d"}},
            ]
        },
        {"all": [{"field": "insurance_expires_on", "op": "within_next", "value": "30d"}, {"churned": False}]},
        {
            "all": [
                {"field": "last_order_at", "op": "older_than", "value": "60d"},
                {"field": "vip", "op": "eq", "value": True},
            ]
        },
        {"all": [{"stage": {"pipeline_id": 1, "in": ["兴趣", "孵化"]}}, {"source": {"in": ["qr_spring"]}}]},
    ]
}
RECOMMENDED_POSTGRES = [
    "CREATE INDEX IF NOT EXISTS ix_customers_fields_gin ON customers USING gin (fields jsonb_path_ops)",
]


def fake_customer(rng: random.Random) -> dict[str, Any]:
    fields: dict[str, Any] = {"city": rng.choice(FIELDS["city"].choices), "order_count": rng.randint(0, 6)}
    if rng.random() < 0.5:
        fields["vip"] = rng.random() < 0.2
    if rng.random() < 0.3:
        fields["insurance_expires_on"] = (NOW.date() + timedelta(days=rng.randint(-200, 365))).isoformat()
    if fields["order_count"]:
        fields["last_order_at"] = to_storage("datetime", NOW - timedelta(minutes=rng.randint(0, 400 * 1440)))
    if rng.random() < 0.4:
        fields["interests"] = sorted(set(rng.sample(FIELDS["interests"].choices, rng.randint(1, 2))))
    return {
        "fields": fields,
        "timezone": rng.choice((None, None, None, "America/New_York", "Australia/Lord_Howe")),
        "source": rng.choice(SOURCES),
        "churned_at": NOW if rng.random() < 0.05 else None,
        "tags": set(rng.sample(TAGS, rng.choice((0, 1, 1, 2, 3)))),
        "stage": rng.choice((None, *STAGES)),
        "events": [
            (rng.choice(("order.paid", "message.received")), NOW - timedelta(hours=rng.randint(0, 4000)))
            for _ in range(rng.choice((0, 1, 2, 3)))
        ],
    }


def load(engine: sa.Engine, n: int, seed: int) -> int:
    rng = random.Random(seed)
    with engine.begin() as conn:
        tenant_id = conn.execute(
            sa.insert(Tenant.__table__).returning(Tenant.__table__.c.id),
            {"name": uuid.uuid4().hex, "timezone": TZ, "settings": {}, "created_at": NOW},
        ).scalar_one()
        conn.execute(
            sa.insert(Pipeline.__table__),
            {"id": 1, "tenant_id": tenant_id, "name": "销售", "created_at": NOW},
        )
        conn.execute(
            sa.insert(Stage.__table__),
            [
                {"id": i + 1, "tenant_id": tenant_id, "pipeline_id": 1, "name": s, "position": i}
                for i, s in enumerate(STAGES)
            ],
        )
    next_id, chunk = 1, 20_000
    for start in range(0, n, chunk):
        people = [fake_customer(rng) for _ in range(min(chunk, n - start))]
        ids = list(range(next_id, next_id + len(people)))
        next_id += len(people)
        with engine.begin() as conn:
            conn.execute(
                sa.insert(Customer.__table__),
                [
                    {
                        "id": cid,
                        "tenant_id": tenant_id,
                        "display_name": "",
                        "fields": p["fields"],
                        "timezone": p["timezone"],
                        "source": p["source"],
                        "churned_at": p["churned_at"],
                        "created_at": NOW,
                        "updated_at": NOW,
                    }
                    for cid, p in zip(ids, people, strict=True)
                ],
            )
            tags = [
                {"customer_id": cid, "tag": t, "tenant_id": tenant_id}
                for cid, p in zip(ids, people, strict=True)
                for t in p["tags"]
            ]
            stages = [
                {
                    "customer_id": cid,
                    "pipeline_id": 1,
                    "tenant_id": tenant_id,
                    "stage_id": STAGES.index(p["stage"]) + 1,
                    "entered_at": NOW,
                }
                for cid, p in zip(ids, people, strict=True)
                if p["stage"]
            ]
            events = [
                {
                    "tenant_id": tenant_id,
                    "customer_id": cid,
                    "type": t,
                    "idempotency_key": f"{cid}-{i}",
                    "occurred_at": at,
                    "received_at": at,
                    "payload": {},
                    "source": "bench",
                    "causation_id": None,
                    "depth": 0,
                }
                for cid, p in zip(ids, people, strict=True)
                for i, (t, at) in enumerate(p["events"])
            ]
            for table, rows in ((CustomerTag, tags), (CustomerStage, stages), (Event, events)):
                if rows:
                    conn.execute(sa.insert(table.__table__), rows)
    return tenant_id


def naive_count(engine: sa.Engine, rule: Any, tenant_id: int, limit: int) -> tuple[int, float]:
    """Load ``limit`` customers with their tags, stages and events; evaluate each in Python."""
    started = time.perf_counter()
    with Session(engine) as s:
        rows = s.execute(
            sa.select(Customer.__table__)
            .where(Customer.__table__.c.tenant_id == tenant_id)
            .order_by(Customer.__table__.c.id)
            .limit(limit)
        ).all()
        top = rows[-1].id if rows else 0
        tags: dict[int, set[str]] = defaultdict(set)
        for cid, tag in s.execute(
            sa.select(CustomerTag.customer_id, CustomerTag.tag).where(CustomerTag.customer_id <= top)
        ):
            tags[cid].add(tag)
        stage_q = (
            sa.select(CustomerStage.customer_id, CustomerStage.pipeline_id, Stage.name)
            .join(Stage, Stage.id == CustomerStage.stage_id)
            .where(CustomerStage.customer_id <= top)
        )
        stages: dict[int, dict[int, str]] = defaultdict(dict)
        for cid, pid, name in s.execute(stage_q):
            stages[cid][pid] = name
        events: dict[int, list[tuple[str, datetime]]] = defaultdict(list)
        for cid, etype, at in s.execute(
            sa.select(Event.customer_id, Event.type, Event.occurred_at).where(Event.customer_id <= top)
        ):
            events[cid].append((etype, at))
    matched = 0
    for row in rows:
        evs = events[row.id]
        snap = CustomerSnapshot(
            fields=row.fields,
            tags=frozenset(tags[row.id]),
            stages=stages[row.id],
            churned=row.churned_at is not None,
            source=row.source,
            timezone=resolve_timezone(row.timezone, TZ),
            event_counts=lambda t, since, evs=evs: sum(
                1 for e, at in evs if e == t and (since is None or at >= since)
            ),
        )
        matched += evaluate(rule, snap, NOW)
    return matched, time.perf_counter() - started


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--customers", type=int, default=1_000_000)
    ap.add_argument("--backend", choices=("sqlite", "postgres"), default="sqlite")
    ap.add_argument("--postgres-url", default="postgresql+psycopg://sopflow@127.0.0.1:55432/postgres")
    ap.add_argument(
        "--baseline-customers", type=int, default=20_000, help="slice for the naive Python baseline"
    )
    ap.add_argument("--seed", type=int, default=7)
    args = ap.parse_args()
    rule = parse(AUDIENCE, FIELDS)
    cleanup: Any = None
    if args.backend == "sqlite":
        path = Path(tempfile.mkdtemp()) / "bench.db"
        engine = sa.create_engine(f"sqlite:///{path}")
        cleanup = lambda: path.unlink(missing_ok=True)  # noqa: E731
    else:
        name = f"sopflow_bench_{uuid.uuid4().hex[:10]}"
        admin = sa.create_engine(args.postgres_url, isolation_level="AUTOCOMMIT")
        with admin.connect() as c:
            c.exec_driver_sql(f"CREATE DATABASE \"{name}\" ENCODING 'UTF8' TEMPLATE template0")
        engine = sa.create_engine(make_url(args.postgres_url).set(database=name))

        def cleanup() -> None:
            with admin.connect() as c:
                c.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    try:
        metadata.create_all(engine)
        t0 = time.perf_counter()
        tenant_id = load(engine, args.customers, args.seed)
        load_s = time.perf_counter() - t0
        with engine.begin() as conn:
            for ddl in RECOMMENDED_POSTGRES if args.backend == "postgres" else []:
                conn.exec_driver_sql(ddl)
            conn.exec_driver_sql("ANALYZE")
        timings, count = [], 0
        for _ in range(3):
            with Session(engine) as s:
                started = time.perf_counter()
                count = count_customers(s, rule, tenant_id, now=NOW, tenant_timezone=TZ)
                timings.append(time.perf_counter() - started)
        slice_n = min(args.baseline_customers, args.customers)
        naive_matched, naive_s = naive_count(engine, rule, tenant_id, slice_n)
        naive_full = naive_s * args.customers / max(slice_n, 1)
        print(
            json.dumps(
                {
                    "backend": args.backend,
                    "customers": args.customers,
                    "matched": count,
                    "load_seconds": round(load_s, 1),
                    "count_seconds_median_of_3": round(statistics.median(timings), 4),
                    "count_seconds_all": [round(t, 4) for t in timings],
                    "naive_python": {
                        "customers": slice_n,
                        "matched": naive_matched,
                        "seconds": round(naive_s, 3),
                        "extrapolated_seconds": round(naive_full, 2),
                    },
                    "speedup_vs_naive": round(naive_full / statistics.median(timings), 1),
                },
                ensure_ascii=False,
                indent=2,
            )
        )
    finally:
        engine.dispose()
        cleanup()


if __name__ == "__main__":
    main()

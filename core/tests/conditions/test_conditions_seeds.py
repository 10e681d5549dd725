"""The seed use cases (docs/rules.md) select the customers a person would pick,
through both back-ends; plus ``snapshot_customer`` and ``to_storage``."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from conditions_db import load_tenant
from conditions_strategies import FIELDS
from sopflow.conditions import (
    count_customers,
    evaluate,
    parse,
    select_customers,
    snapshot_customer,
    to_storage,
)
from sopflow.models import Customer
from sqlalchemy.orm import Session

NOW = datetime(2026, 6, 30, 16, 30, tzinfo=UTC)  # 00:30 on 1 July in Shanghai

DENTAL = {"tags": {"any_of": ["拔牙"]}}
SUNSCREEN = {
    "any": [{"tags": {"any_of": ["防晒霜"]}}, {"field": "interests", "op": "contains", "value": "防晒霜"}]
}
INSURANCE = {"field": "insurance_expires_on", "op": "within_next", "value": "30d"}
DORMANT = {
    "all": [
        {"churned": False},
        {
            "any": [
                {"field": "last_order_at", "op": "older_than", "value": "60d"},
                {"events": {"type": "message.received", "max": 0, "within": "60d"}},
            ]
        },
    ]
}


def person(name: str, **kw: Any) -> dict[str, Any]:
    base = {
        "fields": {"name": name},
        "tags": frozenset(),
        "stages": {},
        "churned": False,
        "source": None,
        "timezone": None,
        "events": [("message.received", NOW - timedelta(days=1))],
        "merged": False,
    }
    base.update(kw)
    base["fields"] = {"name": name, **kw.get("fields", {})}
    return base


PEOPLE = [
    person("extraction", tags=frozenset({"拔牙", "vip"})),
    person("sunscreen-tag", tags=frozenset({"防晒霜"})),
    person("sunscreen-field", fields={"interests": ["护肤", "防晒霜"]}),
    # Shanghai today is 1 July, so 31 July is the last day inside 30d (UTC would say 30 July).
    person("expires-31-jul", fields={"insurance_expires_on": "2026-07-31"}),
    person("expires-1-aug", fields={"insurance_expires_on": "2026-08-01"}),
    person("expired-30-jun", fields={"insurance_expires_on": "2026-06-30"}),
    person("ny-expires-30-jun", timezone="America/New_York", fields={"insurance_expires_on": "2026-06-30"}),
    person("old-order", fields={"last_order_at": to_storage("datetime", NOW - timedelta(days=61))}),
    person("silent", events=[("message.received", NOW - timedelta(days=61))]),
    person("silent-but-churned", events=[], churned=True),
    person("merged-extraction", tags=frozenset({"拔牙"}), merged=True),
]
EXPECTED = {
    "dental": (DENTAL, {"extraction"}),
    "sunscreen": (SUNSCREEN, {"sunscreen-tag", "sunscreen-field"}),
    "insurance": (INSURANCE, {"expires-31-jul", "ny-expires-30-jun"}),
    "dormant": (DORMANT, {"old-order", "silent"}),
}


@pytest.mark.parametrize("case", sorted(EXPECTED))
def test_seed_audiences(db: Any, case: str) -> None:
    engine, stage_ids = db
    raw, names = EXPECTED[case]
    tenant_id, ids = load_tenant(engine, "Asia/Shanghai", PEOPLE, stage_ids)
    by_id = {cid: p["fields"]["name"] for cid, p in zip(ids, PEOPLE, strict=True)}
    rule = parse(raw, FIELDS)
    with Session(engine) as session:
        selected = select_customers(session, rule, tenant_id, now=NOW)
        assert {by_id[cid] for cid in selected} == names
        assert count_customers(session, rule, tenant_id, now=NOW) == len(names)
        evaluated = set()
        for cid in ids:
            snap = snapshot_customer(session, session.get(Customer, cid), "Asia/Shanghai")
            if evaluate(rule, snap, NOW):
                evaluated.add(by_id[cid])
        assert evaluated == names
        page = select_customers(session, rule, tenant_id, now=NOW, limit=1, after_id=min(selected))
        assert page == sorted(selected)[1:2]


def test_snapshot_resolves_unknown_zones_to_the_tenants(db: Any) -> None:
    engine, stage_ids = db
    people = [person("a", timezone="Mars/Olympus", stages={1: "孵化"}, tags=frozenset({"x"}))]
    _, [cid] = load_tenant(engine, "Asia/Shanghai", people, stage_ids)
    with Session(engine) as session:
        snap = snapshot_customer(session, session.get(Customer, cid), "Asia/Shanghai")
    assert snap.timezone == "Asia/Shanghai"
    assert snap.stages == {1: "孵化"} and snap.tags == frozenset({"x"})


@pytest.mark.parametrize(
    ("type_", "value", "stored"),
    [
        ("datetime", "2026-05-01T09:00:00+08:00", "2026-05-01T01:00:00+00:00"),
        ("datetime", "2026-05-01T01:00:00.5Z", "2026-05-01T01:00:00.500000+00:00"),
        ("date", "2026-05-01", "2026-05-01"),
        ("multi_choice", ["b", "a", "a"], ["a", "b"]),
        ("number", -0.0, -0.0),
        ("text", "拔牙😀", "拔牙😀"),
        ("bool", None, None),
    ],
)
def test_to_storage_canonical_forms(type_: str, value: Any, stored: Any) -> None:
    assert to_storage(type_, value) == stored


@pytest.mark.parametrize(
    ("type_", "value"),
    [("number", True), ("number", 2**54), ("bool", 1), ("date", "2026-05-01T00:00:00"), ("text", "a\x00")],
)
def test_to_storage_refuses(type_: str, value: Any) -> None:
    with pytest.raises(ValueError):
        to_storage(type_, value)

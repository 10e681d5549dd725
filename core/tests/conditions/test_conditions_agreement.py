"""The evaluator and the compiled SQL select exactly the same customers, on SQLite
and on Postgres, for random rules over random customers."""

from __future__ import annotations

import json
import os
from datetime import timedelta
from typing import Any
from zoneinfo import ZoneInfo

from conditions_db import load_tenant, oracle_snapshot
from conditions_strategies import CUSTOMER_ZONES, DAY_SPANS, FIELDS, RELATIVE, ZONES, customers, nows, rules
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sopflow.conditions import evaluate, parse, resolve_timezone, select_customers, snapshot_customer
from sopflow.models import Customer
from sqlalchemy.orm import Session


@st.composite
def scenarios(draw: Any) -> tuple[Any, ...]:
    now = draw(nows())
    return (
        now,
        draw(st.sampled_from(ZONES)),
        draw(st.lists(rules(now), min_size=1, max_size=4)),
        draw(st.lists(customers(now), min_size=0, max_size=12)),
    )


@settings(
    max_examples=int(os.environ.get("SOPFLOW_RULE_EXAMPLES", "120")),
    deadline=None,
    database=None,
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.function_scoped_fixture,
        HealthCheck.data_too_large,
    ],
)
@given(scenario=scenarios())
def test_evaluate_and_sql_select_the_same_customers(db: Any, scenario: tuple[Any, ...]) -> None:
    engine, stage_ids = db
    now, tenant_tz, raw_rules, people = scenario
    tenant_id, ids = load_tenant(engine, tenant_tz, people, stage_ids)
    with Session(engine) as session:
        loaded = {c.id: c for c in session.query(Customer).filter(Customer.tenant_id == tenant_id)}
        snapshots = {cid: snapshot_customer(session, loaded[cid], tenant_tz) for cid in ids}
        for raw in raw_rules:
            rule = parse(raw, FIELDS)
            expected = {
                cid
                for cid, p in zip(ids, people, strict=True)
                if evaluate(rule, oracle_snapshot(p, tenant_tz), now)
            }
            from_db = {cid for cid in ids if evaluate(rule, snapshots[cid], now)}
            selected = set(select_customers(session, rule, tenant_id, now=now, tenant_timezone=tenant_tz))
            case = f"rule={json.dumps(raw, ensure_ascii=False)} now={now.isoformat()} tz={tenant_tz}"
            assert from_db == expected, case
            wrong = [p for cid, p in zip(ids, people, strict=True) if (cid in selected) != (cid in expected)]
            assert selected == expected, f"{case} customers={wrong}"


@st.composite
def date_window_scenarios(draw: Any) -> tuple[Any, ...]:
    """Customers whose dates sit on the edges of local-today windows, in many zones."""
    now = draw(nows())
    tenant_tz = draw(st.sampled_from(ZONES))
    people = []
    for _ in range(draw(st.integers(1, 12))):
        tz = draw(st.sampled_from(CUSTOMER_ZONES))
        base_zone = draw(st.sampled_from((resolve_timezone(tz, tenant_tz), "UTC", *ZONES)))
        today = now.astimezone(ZoneInfo(base_zone)).date()
        edge = draw(st.sampled_from((0, 1, 2, 13, 14, 15, 29, 30, 31, 59, 60, 61))) * draw(
            st.sampled_from((1, -1))
        )
        fields = {"insurance_expires_on": (today + timedelta(days=edge)).isoformat()}
        people.append(
            {
                "fields": fields,
                "tags": frozenset(),
                "stages": {},
                "churned": False,
                "source": None,
                "timezone": tz,
                "events": [],
                "merged": False,
            }
        )
    op = draw(st.sampled_from(RELATIVE))
    rule = {"field": "insurance_expires_on", "op": op, "value": draw(st.sampled_from(DAY_SPANS))}
    if draw(st.booleans()):
        rule = {"not": rule}
    return now, tenant_tz, [rule], people


@settings(
    max_examples=int(os.environ.get("SOPFLOW_RULE_EXAMPLES", "120")),
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(scenario=date_window_scenarios())
def test_date_windows_agree_across_time_zones(db: Any, scenario: tuple[Any, ...]) -> None:
    engine, stage_ids = db
    now, tenant_tz, raw_rules, people = scenario
    tenant_id, ids = load_tenant(engine, tenant_tz, people, stage_ids)
    rule = parse(raw_rules[0], FIELDS)
    expected = {
        cid for cid, p in zip(ids, people, strict=True) if evaluate(rule, oracle_snapshot(p, tenant_tz), now)
    }
    with Session(engine) as session:
        selected = set(select_customers(session, rule, tenant_id, now=now, tenant_timezone=tenant_tz))
    assert selected == expected, f"rule={raw_rules[0]} now={now.isoformat()} tz={tenant_tz} people={people}"

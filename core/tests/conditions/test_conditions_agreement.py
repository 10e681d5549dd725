"""The evaluator and the compiled SQL select exactly the same customers, on SQLite
and on Postgres, for random rules over random customers."""

from __future__ import annotations

import json
import os
from typing import Any

from conditions_db import load_tenant, oracle_snapshot
from conditions_strategies import FIELDS, ZONES, customers, nows, rules
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy.orm import Session

from sopflow.conditions import evaluate, parse, select_customers, snapshot_customer
from sopflow.models import Customer


@st.composite
def scenarios(draw: Any) -> tuple[Any, ...]:
    now = draw(nows())
    return (
        now,
        draw(st.sampled_from(ZONES)),
        draw(st.lists(rules(now), min_size=1, max_size=4)),
        draw(st.lists(customers(now), min_size=0, max_size=12)),
    )


@settings(max_examples=int(os.environ.get("SOPFLOW_RULE_EXAMPLES", "120")), deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow,
          HealthCheck.function_scoped_fixture, HealthCheck.data_too_large])  # fmt: skip
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
            expected = {cid for cid, p in zip(ids, people, strict=True) if evaluate(rule, oracle_snapshot(p, tenant_tz), now)}
            from_db = {cid for cid in ids if evaluate(rule, snapshots[cid], now)}
            selected = set(select_customers(session, rule, tenant_id, now=now, tenant_timezone=tenant_tz))
            case = f"rule={json.dumps(raw, ensure_ascii=False)} now={now.isoformat()} tz={tenant_tz}"
            assert from_db == expected, case
            wrong = [p for cid, p in zip(ids, people, strict=True) if (cid in selected) != (cid in expected)]
            assert selected == expected, f"{case} customers={wrong}"

"""Sync over 100,000 customers (F12): the set-based SQL places every customer
exactly where the Python placement rule puts them, and a re-run moves nobody."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import attrs
import sqlalchemy as sa
from sopflow.conditions import CustomerSnapshot, to_storage

CUSTOMERS = 100_000
TAGS = ["咨询", "拔牙", "复查", "vip", "价格", "试听"]
CITIES = ["上海", "北京", "杭州", "深圳"]


def stage_rules() -> list[dict]:
    def cond_tags(*t):
        return {"tags": {"any_of": list(t)}}

    return [
        {"name": "激活", "rules": [{"conditions": [cond_tags("咨询")]}]},
        {
            "name": "兴趣",
            "rules": [
                {"conditions": [cond_tags("价格"), {"churned": False}]},
                {"conditions": [{"field": "city", "op": "eq", "value": "杭州"}, cond_tags("试听", "vip")]},
            ],
        },
        {
            "name": "孵化",
            "rules": [
                {
                    "conditions": [
                        {"stage": {"in": ["兴趣"]}},
                        {"field": "order_count", "op": "gte", "value": 1},
                    ]
                },
                {"conditions": [{"tags": {"all_of": ["拔牙", "复查"]}}]},
            ],
        },
        {
            "name": "决策",
            "rules": [
                {
                    "conditions": [
                        {"field": "order_count", "op": "between", "value": [2, 4]},
                        {"not": {"field": "city", "op": "in", "value": ["北京"]}},
                        {"churned": False},
                    ]
                }
            ],
        },
        {
            "name": "签单",
            "rules": [
                {"conditions": [{"field": "order_count", "op": "gte", "value": 5}, cond_tags("vip")]},
                {"conditions": [{"stage": {"in": ["决策"]}}, cond_tags("拔牙")]},
            ],
        },
    ]


def test_sync_100k_matches_python_placement(api, sopflow_app):
    from sopflow.engine.customers.fields import field_definitions
    from sopflow.engine.journeys.manage import get_journey
    from sopflow.engine.journeys.placement import target_stage
    from sopflow.engine.journeys.sync import request_sync, run_sync
    from sopflow.models import Customer, CustomerStage, CustomerTag, StageHistory

    for key, kind in (("city", "text"), ("order_count", "number")):
        assert api.post("/api/v1/fields", json={"key": key, "label": key, "type": kind}).status_code == 201
    journey = api.post("/api/v1/journeys", json={"name": "life", "stages": stage_rules()}).json()
    pid, stage_ids = journey["pipeline_id"], [s["id"] for s in journey["stages"]]
    names = {s["id"]: s["name"] for s in journey["stages"]}

    rng = random.Random(20261130)
    now = sopflow_app.now()
    fields_by_id: dict[int, dict] = {}
    tags_by_id: dict[int, frozenset] = {}
    churned_by_id: dict[int, bool] = {}
    current: dict[int, str] = {}
    with sopflow_app.tx() as s:
        first = (s.scalar(sa.select(sa.func.max(Customer.id))) or 0) + 1
        rows, tag_rows, stage_rows, history = [], [], [], []
        for cid in range(first, first + CUSTOMERS):
            f: dict = {}
            if rng.random() < 0.8:
                f["city"] = rng.choice(CITIES)
            if rng.random() < 0.85:
                f["order_count"] = to_storage("number", rng.randint(0, 7))
            churned = rng.random() < 0.1
            tags = frozenset(t for t in TAGS if rng.random() < 0.2)
            fields_by_id[cid], tags_by_id[cid], churned_by_id[cid] = f, tags, churned
            rows.append(
                {
                    "id": cid,
                    "tenant_id": api.tenant_id,
                    "display_name": "",
                    "fields": f,
                    "churned_at": now - timedelta(days=3) if churned else None,
                    "created_at": now,
                    "updated_at": now,
                }
            )
            tag_rows += [{"customer_id": cid, "tag": t, "tenant_id": api.tenant_id} for t in tags]
            if rng.random() < 0.3:  # some already stand somewhere
                sid = rng.choice(stage_ids)
                current[cid] = names[sid]
                stage_rows.append(
                    {
                        "customer_id": cid,
                        "pipeline_id": pid,
                        "tenant_id": api.tenant_id,
                        "stage_id": sid,
                        "entered_at": now,
                    }
                )
                history.append(
                    {
                        "tenant_id": api.tenant_id,
                        "customer_id": cid,
                        "pipeline_id": pid,
                        "stage_id": sid,
                        "entered_at": now,
                        "cause": "manual",
                    }
                )
        for table, data in (
            (Customer.__table__, rows),
            (CustomerTag.__table__, tag_rows),
            (CustomerStage.__table__, stage_rows),
            (StageHistory.__table__, history),
        ):
            for i in range(0, len(data), 20_000):
                s.execute(sa.insert(table), data[i : i + 20_000])

    assert api.post(f"/api/v1/journeys/{journey['id']}/start").status_code == 200
    with sopflow_app.tx() as s:
        fields = field_definitions(s, api.tenant_id, sopflow_app.plugins)
        j = get_journey(s, api.tenant_id, journey["id"])
        from sopflow.engine.journeys.placement import parsed_stage_rules

        rules, positions = parsed_stage_rules(s, j, fields)
        expected = {}
        for cid in fields_by_id:
            snap = CustomerSnapshot(
                fields=fields_by_id[cid],
                tags=tags_by_id[cid],
                stages={pid: current[cid]} if cid in current else {},
                churned=churned_by_id[cid],
                timezone="Asia/Shanghai",
            )
            stands = current.get(cid)
            for _ in range(len(rules) + 1):  # a move can enable the next (stage conditions)
                target = target_stage(rules, positions, snap, now, j)
                if target is None:
                    break
                stands = target.name
                snap = attrs.evolve(snap, stages={pid: stands})
            expected[cid] = stands
        request_sync(s, j, now)

    done = run_sync(sopflow_app, api.tenant_id, journey["id"], batch=25_000)
    moved = sum(1 for cid, name in expected.items() if name != current.get(cid))
    assert done["state"] == "done" and done["done"] == CUSTOMERS and done["placed"] == moved
    with sopflow_app.tx() as s:
        got = dict(
            s.execute(
                sa.select(CustomerStage.customer_id, CustomerStage.stage_id).where(
                    CustomerStage.pipeline_id == pid
                )
            ).all()
        )
        open_rows = s.scalar(
            sa.select(sa.func.count())
            .select_from(StageHistory)
            .where(StageHistory.pipeline_id == pid, StageHistory.left_at.is_(None))
        )
    assert {cid: names[sid] for cid, sid in got.items()} == {
        c: n for c, n in expected.items() if n is not None
    }
    assert open_rows == len(got)  # one open history row per placed customer
    assert 0 < moved < CUSTOMERS and len({n for n in expected.values() if n}) == 5

    api.post(f"/api/v1/journeys/{journey['id']}/sync")
    again = run_sync(sopflow_app, api.tenant_id, journey["id"], batch=25_000)
    assert again["placed"] == 0


def test_sync_uses_the_clock_in_rules(api, sopflow_app, manual_clock):
    """A date-relative stage rule is evaluated at the injected now in the sync too."""
    manual_clock.set(datetime(2026, 6, 1, 12, tzinfo=UTC))
    assert (
        api.post("/api/v1/fields", json={"key": "expires", "label": "x", "type": "date"}).status_code == 201
    )
    body = {
        "name": "renew",
        "stages": [
            {
                "name": "soon",
                "rules": [{"conditions": [{"field": "expires", "op": "within_next", "value": "30d"}]}],
            }
        ],
    }
    journey = api.post("/api/v1/journeys", json=body).json()
    ids = []
    for i, day in enumerate(("2026-06-10", "2026-08-01")):  # before the journey is active
        r = api.post("/api/v1/customers", json={"display_name": f"c{i}", "fields": {"expires": day}})
        ids.append(r.json()["id"])
    api.post(f"/api/v1/journeys/{journey['id']}/start")
    assert api.get(f"/api/v1/journeys/{journey['id']}/board").json()["stages"][0]["count"] == 0
    from sopflow.engine.journeys.sync import run_sync

    api.post(f"/api/v1/journeys/{journey['id']}/sync")
    run_sync(sopflow_app, api.tenant_id, journey["id"])
    board = api.get(f"/api/v1/journeys/{journey['id']}/board").json()
    assert [c["id"] for c in board["stages"][0]["customers"]] == [ids[0]]

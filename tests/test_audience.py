"""Starting a nurture SOP enrols its existing audience set-based (F15): the
enrolments and the touches' due times are exactly what the per-customer path
(``enroll`` for each customer the runtime targets) gives — across time zones
(an unknown zone falls back to the tenant's), sources, staff filters, the
early-end rule (F22), catch-up of steps already past, and re-entry."""

from __future__ import annotations

import random
from datetime import datetime
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.orm import Session

from tests.sop_support import add_customer, create_sop, send

SHANGHAI = ZoneInfo("Asia/Shanghai")
ZONES = [None, "America/New_York", "Europe/Berlin", "Asia/Tokyo"]

DEFINITION = {
    "kind": "nurture",
    "target": {
        "rule": {
            "any": [{"tags": {"any_of": ["防晒霜"]}}, {"field": "order_count", "op": "gte", "value": 2}]
        },
        "sources": ["qr_a", "qr_b"],
        "staff": ["zhangsan", "lisi"],
    },
    "early_end": {"tags": {"any_of": ["退货"]}},
    "catch_up": "next_day",
    "quiet_hours": {"start": "22:00", "end": "08:00"},
    "steps": [
        {"day": 0, "at": "09:00", "actions": [send("past already today: next day")]},
        {"day": 0, "at": "23:30", "actions": [send("inside quiet hours")]},
        {"day": 5, "at": "10:00", "actions": [send("day 5")]},
        {"delay": "2h", "actions": [send("two hours later")]},
    ],
}


def _expected(app, tenant_id: int, sop_id: int) -> dict[int, tuple[str, list[tuple[int, str, datetime]]]]:
    """What the per-customer path would enrol, computed in a transaction that is rolled back."""
    from sopflow.conditions import snapshot_customer
    from sopflow.engine.customers.fields import field_definitions
    from sopflow.engine.sops.enrolment import SopRuntime, enroll, staff_of, tenant_timezone
    from sopflow.models import Customer, Sop, SopVersion, Touch

    out = {}
    with Session(app.engine) as s:
        sop = s.get(Sop, sop_id)
        sop.status = "started"
        version = s.scalar(sa.select(SopVersion).where(SopVersion.sop_id == sop_id))
        runtime = SopRuntime(sop, version, field_definitions(s, tenant_id, app.plugins))
        tz = tenant_timezone(s, tenant_id)
        now = app.now()
        for customer in s.scalars(
            sa.select(Customer).where(Customer.tenant_id == tenant_id).order_by(Customer.id)
        ):
            snap = snapshot_customer(s, customer, tz)
            if runtime.targets(snap, staff_of(s, customer), now):
                e = enroll(s, runtime, customer, now, tenant_timezone=tz, snapshot=snap)
                if e is not None:
                    rows = s.scalars(
                        sa.select(Touch).where(Touch.enrollment_id == e.id).order_by(Touch.step_index)
                    )
                    out[customer.id] = (e.timezone, [(t.step_index, t.status, t.due_at) for t in rows])
        s.rollback()
    return out


def _actual(app, sop_id: int) -> dict[int, tuple[str, list[tuple[int, str, datetime]]]]:
    from sopflow.models import Enrollment, Touch

    out = {}
    with app.tx() as s:
        for e in s.scalars(sa.select(Enrollment).where(Enrollment.sop_id == sop_id)):
            rows = s.scalars(sa.select(Touch).where(Touch.enrollment_id == e.id).order_by(Touch.step_index))
            out[e.customer_id] = (e.timezone, [(t.step_index, t.status, t.due_at) for t in rows])
    return out


def test_set_based_audience_equals_the_per_customer_path(api, sopflow_app, manual_clock):
    manual_clock.set(datetime(2026, 3, 7, 15, 10, tzinfo=SHANGHAI))  # New York changes to DST next day
    assert api.post("/api/v1/fields", json={"key": "order_count", "type": "number"}).status_code == 201
    rng = random.Random(5)
    for i in range(120):
        tags = [t for t in ("防晒霜", "退货", "vip") if rng.random() < 0.4]
        add_customer(
            api,
            f"wm-{i}",
            tags=tags,
            timezone=rng.choice(ZONES),
            source=rng.choice(["qr_a", "qr_b", "qr_c", None]),
            staff=rng.choice(["zhangsan", "lisi", "wangwu"]),
            fields={"order_count": rng.randint(0, 3)},
            event_type="customer.updated",
        )
    from sopflow.models import Customer

    with sopflow_app.tx() as s:  # a zone stored before validation existed: the tenant's counts
        s.execute(sa.update(Customer).where(Customer.id % 7 == 0).values(timezone="Not/AZone"))
    sop_id = create_sop(api, "audience", DEFINITION, start=False)
    expected = _expected(sopflow_app, api.tenant_id, sop_id)
    assert 10 < len(expected) < 120  # the filters bite both ways
    assert api.post(f"/api/v1/sops/{sop_id}/start").status_code == 200
    audience = api.get(f"/api/v1/sops/{sop_id}").json()["audience"]
    assert audience["state"] == "done" and audience["enrolled"] == len(expected)
    assert _actual(sopflow_app, sop_id) == expected
    assert {tz for tz, _ in expected.values()} >= {"Asia/Shanghai", "America/New_York", "Asia/Tokyo"}


def test_restarting_with_reentry_takes_the_per_customer_path_for_returning_customers(api, sopflow_app):
    from sopflow.engine.sops.lifecycle import rearm

    definition = {
        "kind": "nurture",
        "target": {"rule": {"tags": {"any_of": ["a"]}}},
        "reentry": True,
        "steps": [{"day": 1, "at": "10:00", "actions": [send("x")]}],
    }
    ids = [add_customer(api, f"wm-r{i}", tags=["a"]) for i in range(3)]
    sop_id = create_sop(api, "re", definition)
    assert len(_actual(sopflow_app, sop_id)) == 3
    assert api.post(f"/api/v1/sops/{sop_id}/stop").status_code == 200
    with sopflow_app.tx() as s:  # as if ids[0] had left the audience and come back
        rearm(s, sop_id, ids[0])
    assert api.post(f"/api/v1/sops/{sop_id}/start").status_code == 200
    entries = api.get(f"/api/v1/sops/{sop_id}/enrollments", params={"limit": 100}).json()["items"]
    assert sorted((e["customer_id"], e["entry_seq"]) for e in entries) == sorted(
        [(c, 0) for c in ids] + [(ids[0], 1)]
    )

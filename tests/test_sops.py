"""The SOP engine against the seeds' scenarios, with the manual clock."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from tests.sop_support import add_customer, create_sop, log_channel, run_days, send, tag, touches

SHANGHAI = ZoneInfo("Asia/Shanghai")


@pytest.fixture(autouse=True)
def start_clock(manual_clock):
    # Monday 2026-03-02 10:30 Shanghai; a DST change in New York follows on 2026-03-08.
    manual_clock.set(datetime(2026, 3, 2, 10, 30, tzinfo=SHANGHAI))


SUNSCREEN = {
    "kind": "nurture",
    "target": {"rule": {"tags": {"any_of": ["防晒霜"]}}},
    "steps": [
        {"day": d, "at": "10:00", "actions": [send(f"day {d}: {{{{ customer.display_name }}}}")]}
        for d in (5, 10, 15, 30, 40)
    ],
}


def test_sunscreen_nurture_day_5_10_15_30_40_in_two_time_zones(api, sopflow_app, manual_clock):
    create_sop(api, "sunscreen", SUNSCREEN)
    sh = add_customer(api, "wm-sh", tags=["防晒霜"])
    ny = add_customer(api, "wm-ny", timezone="America/New_York")
    tag(api, ny, "防晒霜")  # the rule becomes true on a data change → enrolled
    start = manual_clock.now()
    run_days(sopflow_app, manual_clock, 45)
    for customer_id, zone in ((sh, SHANGHAI), (ny, ZoneInfo("America/New_York"))):
        rows = touches(sopflow_app, customer_id=customer_id)
        assert [t.status for t in rows] == ["sent"] * 5
        enrolled_local = start.astimezone(zone).date()
        for t, day in zip(rows, (5, 10, 15, 30, 40), strict=True):
            local = t.sent_at.astimezone(zone)
            assert (local.date() - enrolled_local).days == day
            assert (local.hour, local.minute) == (10, 0)  # across New York's DST change too
    e = api.get("/api/v1/sops/1/enrollments").json()["items"]
    assert {x["status"] for x in e} == {"completed"}


def test_incubation_3_days_6_touches_private_chat_and_moments(api, sopflow_app, manual_clock):
    steps = [
        (0, "20:00", "private_chat"),
        (1, "09:00", "moments"),
        (1, "20:00", "private_chat"),
        (2, "09:00", "moments"),
        (2, "20:00", "private_chat"),
        (3, "12:00", "private_chat"),
    ]
    create_sop(
        api,
        "incubation",
        {
            "kind": "new_customer",
            "target": {},
            "steps": [{"day": d, "at": at, "actions": [send(f"{tp} {d}", tp)]} for d, at, tp in steps],
        },
    )
    customer = add_customer(api, "wm-new")
    run_days(sopflow_app, manual_clock, 4)
    rows = touches(sopflow_app, customer_id=customer)
    assert [t.status for t in rows] == ["sent"] * 6
    sent_local = [t.sent_at.astimezone(SHANGHAI) for t in rows]
    assert [(x.day - 2, x.strftime("%H:%M")) for x in sent_local] == [(d, at) for d, at, _ in steps]
    assert all(t.deferrals == 0 for t in rows)  # moments do not count against the daily push cap
    assert [m.touchpoint for m in log_channel(sopflow_app, api).sent] == [tp for *_, tp in steps]


def test_early_end_by_tag_then_flow_and_entry_guard(api, sopflow_app, manual_clock):
    nurture_b = create_sop(
        api,
        "after-purchase",
        {
            "kind": "nurture",
            "target": {"rule": {"tags": {"any_of": ["never-matches"]}}},
            "early_end": {"tags": {"any_of": ["已购买"]}},
            "steps": [{"delay": "1h", "actions": [send("thanks")]}],
        },
    )
    a = create_sop(
        api,
        "incubation",
        {
            "kind": "new_customer",
            "target": {},
            "early_end": {"tags": {"any_of": ["已购买"]}},
            "on_early_end": {"tags_add": ["转化"], "flow_to": nurture_b},
            "on_complete": {"tags_add": ["培育完成"]},
            "steps": [{"day": d, "at": "10:00", "actions": [send(f"d{d}")]} for d in (1, 2, 3)],
        },
    )
    buyer = add_customer(api, "wm-buyer")
    finisher = add_customer(api, "wm-finisher")
    run_days(sopflow_app, manual_clock, 1.1)  # day 1 sent to both
    tag(api, buyer, "已购买")
    run_days(sopflow_app, manual_clock, 3)
    buyer_rows = touches(sopflow_app, customer_id=buyer, sop_id=a)
    assert [t.status for t in buyer_rows] == ["sent", "cancelled", "cancelled"]
    b = api.get(f"/api/v1/customers/{buyer}").json()
    assert "转化" in b["tags"] and "培育完成" not in b["tags"]
    # flowed into B despite matching B's early-end rule (F22's flowed-in exception), and B ran
    flowed = api.get(f"/api/v1/sops/{nurture_b}/enrollments").json()["items"]
    assert [(x["customer_id"], x["flowed_from_id"] is not None) for x in flowed] == [(buyer, True)]
    assert flowed[0]["status"] == "ended_early"  # B's own early-end rule is met at its first touch
    f = api.get(f"/api/v1/customers/{finisher}").json()
    assert "培育完成" in f["tags"]
    assert [t.status for t in touches(sopflow_app, customer_id=finisher, sop_id=a)] == ["sent"] * 3


def test_entry_guard_blocks_customer_matching_entry_and_early_end(api, sopflow_app, manual_clock):
    sop = create_sop(
        api,
        "guarded",
        {
            "kind": "new_customer",
            "target": {},
            "early_end": {"tags": {"any_of": ["已购买"]}},
            "steps": [{"delay": "1h", "actions": [send("hi")]}],
        },
    )
    add_customer(api, "wm-already-bought", tags=["已购买"])
    ok = add_customer(api, "wm-fresh")
    assert [e["customer_id"] for e in api.get(f"/api/v1/sops/{sop}/enrollments").json()["items"]] == [ok]


def test_exactly_once_per_customer_and_reentry(api, sopflow_app, manual_clock):
    once = create_sop(
        api,
        "once",
        {
            "kind": "nurture",
            "target": {"rule": {"tags": {"any_of": ["vip"]}}},
            "steps": [{"delay": "1h", "actions": [send("a")]}],
        },
    )
    again = create_sop(
        api,
        "again",
        {
            "kind": "nurture",
            "reentry": True,
            "target": {"rule": {"tags": {"any_of": ["vip"]}}},
            "steps": [{"delay": "1h", "actions": [send("b")]}],
        },
    )
    c = add_customer(api, "wm-vip", tags=["vip"])
    for i in range(3):
        tag(api, c, "vip", key=f"vip-again-{i}")  # more data changes while enrolled: no second entry
    run_days(sopflow_app, manual_clock, 1)
    tag(api, c, "vip", key="still-vip")  # still matching after completion: no re-entry yet
    run_days(sopflow_app, manual_clock, 3)
    assert len(api.get(f"/api/v1/sops/{again}/enrollments").json()["items"]) == 1
    api.post(
        "/api/v1/events",
        json={
            "events": [
                {
                    "type": "customer.updated",
                    "idempotency_key": "unvip",
                    "customer_id": c,
                    "tags_remove": ["vip"],
                }
            ]
        },
    )
    tag(api, c, "vip", key="vip-again")  # matches again → re-entry
    run_days(sopflow_app, manual_clock, 3)  # the daily push cap spreads the two SOPs over days
    assert len(api.get(f"/api/v1/sops/{once}/enrollments").json()["items"]) == 1
    assert [e["status"] for e in api.get(f"/api/v1/sops/{again}/enrollments").json()["items"]] == [
        "completed",
        "completed",
    ]


def test_manual_end_with_tags_and_flow_and_stop(api, sopflow_app, manual_clock):
    target = create_sop(
        api,
        "target",
        {
            "kind": "nurture",
            "target": {"rule": {"tags": {"any_of": ["x"]}}},
            "steps": [{"delay": "2h", "actions": [send("t")]}],
        },
    )
    sop = create_sop(
        api,
        "main",
        {
            "kind": "new_customer",
            "target": {},
            "steps": [{"day": d, "at": "10:00", "actions": [send("m")]} for d in (1, 2)],
        },
    )
    c1 = add_customer(api, "wm-1")
    c2 = add_customer(api, "wm-2")
    e1 = next(e for e in api.get(f"/api/v1/sops/{sop}/enrollments").json()["items"] if e["customer_id"] == c1)
    r = api.post(f"/api/v1/enrollments/{e1['id']}/end", json={"tags_add": ["人工结束"], "flow_to": target})
    assert r.status_code == 200 and r.json()["status"] == "ended_manual"
    assert api.post(f"/api/v1/enrollments/{e1['id']}/end", json={}).status_code == 409
    assert "人工结束" in api.get(f"/api/v1/customers/{c1}").json()["tags"]
    assert [e["customer_id"] for e in api.get(f"/api/v1/sops/{target}/enrollments").json()["items"]] == [c1]
    r = api.post(f"/api/v1/sops/{sop}/stop")
    assert r.status_code == 200 and r.json()["enrollments_stopped"] == 1
    run_days(sopflow_app, manual_clock, 3)
    assert [t.status for t in touches(sopflow_app, customer_id=c2, sop_id=sop)] == ["cancelled", "cancelled"]
    assert all(t.outcome["reason"] == "sop_stopped" for t in touches(sopflow_app, customer_id=c2, sop_id=sop))
    add_customer(api, "wm-3")  # a stopped SOP enrols nobody
    assert len(api.get(f"/api/v1/sops/{sop}/enrollments").json()["items"]) == 2


def test_batch_sending_100_per_10_minutes_over_1000(api, sopflow_app, manual_clock):
    sop = create_sop(
        api,
        "batch",
        {
            "kind": "nurture",
            "target": {"rule": {"tags": {"any_of": ["b"]}}},
            "batch": {"size": 100, "interval": "10m"},
            "steps": [{"delay": "1m", "actions": [send("hello")]}],
        },
    )
    events = [
        {
            "type": "customer.added",
            "idempotency_key": f"b{i}",
            "tags_add": ["b"],
            "identity": {"channel": "wecom", "external_id": f"wm-b{i}"},
        }
        for i in range(1000)
    ]
    for chunk in range(0, 1000, 250):
        assert api.post("/api/v1/events", json={"events": events[chunk : chunk + 250]}).status_code == 200
    run_days(sopflow_app, manual_clock, 1)
    rows = touches(sopflow_app, sop_id=sop)
    assert len(rows) == 1000 and {t.status for t in rows} == {"sent"}
    windows: dict[int, int] = {}
    for t in rows:
        windows[int(t.sent_at.timestamp()) // 600] = windows.get(int(t.sent_at.timestamp()) // 600, 0) + 1
    assert max(windows.values()) <= 100
    assert len(windows) == 10
    assert api.get(f"/api/v1/sops/{sop}/stats").json()["steps"][0]["deferred"] == 900


def test_per_customer_daily_cap_defers_second_sop_to_next_day(api, sopflow_app, manual_clock):
    for name in ("first", "second"):
        create_sop(
            api,
            name,
            {
                "kind": "new_customer",
                "target": {},
                "steps": [{"day": 1, "at": "10:00", "actions": [send(name)]}],
            },
        )
    c = add_customer(api, "wm-cap")
    run_days(sopflow_app, manual_clock, 3)
    rows = touches(sopflow_app, customer_id=c)
    assert [t.status for t in rows] == ["sent", "sent"]
    days = sorted(t.sent_at.astimezone(SHANGHAI).date() for t in rows)
    assert (days[1] - days[0]).days == 1
    late = [t for t in rows if t.deferrals]
    assert len(late) == 1 and late[0].defer_reason == "customer_cap"
    assert late[0].sent_at.astimezone(SHANGHAI).strftime("%H:%M") == "10:00"
    stats = api.get(f"/api/v1/sops/{late[0].sop_id}/stats").json()
    assert stats["steps"][0]["deferred"] == 1 and stats["steps"][0]["on_time_rate"] == 0


def test_batch_wait_gives_the_cap_slot_back_for_good(api, sopflow_app, manual_clock):
    """A touch held back by its SOP's batch window gives back the daily slot it took;
    when the window opens it must take one again: another SOP may have used the day."""
    create_sop(
        api,
        "batched",
        {
            "kind": "new_customer",
            "target": {},
            "batch": {"size": 1, "interval": "10m"},
            "steps": [{"day": 1, "at": "10:00", "actions": [send("batched")]}],
        },
    )
    create_sop(
        api,
        "plain",
        {
            "kind": "new_customer",
            "target": {},
            "steps": [{"day": 1, "at": "10:05", "actions": [send("plain")]}],
        },
    )
    customers = [add_customer(api, f"wm-bc{i}") for i in range(2)]
    run_days(sopflow_app, manual_clock, 3)
    for c in customers:
        rows = touches(sopflow_app, customer_id=c)
        assert [t.status for t in rows] == ["sent", "sent"]
        days = [t.sent_at.astimezone(SHANGHAI).date() for t in rows]
        assert len(set(days)) == 2, f"customer {c} got two pushes on one day"


def test_daily_cap_is_a_tenant_setting(api, sopflow_app, manual_clock):
    assert api.get("/api/v1/tenants/current").json()["customer_daily_push_cap"] == 1
    for bad in (0, 21, -1):
        r = api.patch("/api/v1/tenants/current", json={"customer_daily_push_cap": bad, "timezone": "UTC"})
        assert r.status_code == 422 and r.json()["errors"][0]["field"] == "customer_daily_push_cap"
    assert api.get("/api/v1/tenants/current").json()["timezone"] != "UTC"  # nothing changed
    assert api.patch("/api/v1/tenants/current", json={"customer_daily_push_cap": 2}).status_code == 200
    for name in ("first", "second"):
        create_sop(
            api,
            name,
            {
                "kind": "new_customer",
                "target": {},
                "steps": [{"day": 1, "at": "10:00", "actions": [send(name)]}],
            },
        )
    c = add_customer(api, "wm-cap2")
    run_days(sopflow_app, manual_clock, 3)
    rows = touches(sopflow_app, customer_id=c)
    assert [t.status for t in rows] == ["sent", "sent"] and all(t.deferrals == 0 for t in rows)
    assert rows[0].sent_at == rows[1].sent_at  # two a day allowed now: both on day 1 at 10:00


def test_editing_a_started_sop_pins_running_enrolments(api, sopflow_app, manual_clock):
    sop = create_sop(
        api,
        "edit",
        {
            "kind": "new_customer",
            "target": {},
            "steps": [{"day": d, "at": "10:00", "actions": [send("v1")]} for d in (1, 2)],
        },
    )
    old = add_customer(api, "wm-old")
    r = api.patch(
        f"/api/v1/sops/{sop}",
        json={
            "definition": {
                "kind": "new_customer",
                "target": {},
                "steps": [{"day": d, "at": "11:00", "actions": [send("v2")]} for d in (1, 2, 3)],
            }
        },
    )
    assert r.status_code == 200 and r.json()["version"] == 2
    new = add_customer(api, "wm-new")
    run_days(sopflow_app, manual_clock, 5)
    old_rows, new_rows = touches(sopflow_app, customer_id=old), touches(sopflow_app, customer_id=new)
    assert [t.status for t in old_rows] == ["sent"] * 2
    assert [t.sent_at.astimezone(SHANGHAI).strftime("%H:%M") for t in old_rows] == ["10:00"] * 2
    assert [t.status for t in new_rows] == ["sent"] * 3
    assert [t.sent_at.astimezone(SHANGHAI).strftime("%H:%M") for t in new_rows] == ["11:00"] * 3
    assert [v["version"] for v in api.get(f"/api/v1/sops/{sop}/versions").json()] == [1, 2]


def test_catch_up_policies(api, sopflow_app, manual_clock):
    # enrolment at 10:30; day 0 at 09:00 is already past
    ids = {}
    for policy in ("send_now", "next_day", "skip"):
        ids[policy] = create_sop(
            api,
            policy,
            {
                "kind": "new_customer",
                "target": {},
                "catch_up": policy,
                "steps": [{"day": 0, "at": "09:00", "actions": [send(policy)]}],
            },
        )
    c = add_customer(api, "wm-late")
    enrolled = manual_clock.now()
    assert api.patch("/api/v1/tenants/current", json={"customer_daily_push_cap": 5}).status_code == 200
    run_days(sopflow_app, manual_clock, 2)
    by_sop = {t.sop_id: t for t in touches(sopflow_app, customer_id=c)}
    assert by_sop[ids["send_now"]].sent_at == enrolled
    nd = by_sop[ids["next_day"]].sent_at.astimezone(SHANGHAI)
    assert (nd.date() - enrolled.astimezone(SHANGHAI).date()).days == 1 and nd.strftime("%H:%M") == "09:00"
    assert by_sop[ids["skip"]].status == "skipped"


def test_quiet_hours_move_touch_to_the_morning(api, sopflow_app, manual_clock):
    create_sop(
        api,
        "quiet",
        {
            "kind": "new_customer",
            "target": {},
            "quiet_hours": {"start": "22:00", "end": "08:00"},
            "steps": [{"day": 0, "at": "23:30", "actions": [send("late")]}],
        },
    )
    c = add_customer(api, "wm-q")
    run_days(sopflow_app, manual_clock, 2)
    [t] = touches(sopflow_app, customer_id=c)
    local = t.sent_at.astimezone(SHANGHAI)
    assert local.strftime("%H:%M") == "08:00" and local.day == 3


def test_wait_for_reply_then_continue_or_skip(api, sopflow_app, manual_clock):
    sop = create_sop(
        api,
        "feedback",
        {
            "kind": "new_customer",
            "target": {},
            "steps": [
                {
                    "delay": "1h",
                    "actions": [send("how was it?")],
                    "wait_for_reply": {"timeout": "1d", "on_timeout": "skip"},
                },
                {"delay": "2h", "actions": [send("follow-up")]},
            ],
        },
    )
    replier = add_customer(api, "wm-r")
    silent = add_customer(api, "wm-s")
    run_days(sopflow_app, manual_clock, 0.05)  # first touch at +1h
    api.post(
        "/api/v1/events",
        json={
            "events": [
                {
                    "type": "message.received",
                    "idempotency_key": "reply-1",
                    "customer_id": replier,
                    "payload": {"text": "很好"},
                }
            ]
        },
    )
    run_days(sopflow_app, manual_clock, 2)
    assert [t.status for t in touches(sopflow_app, customer_id=replier)] == ["sent", "sent"]
    assert [t.status for t in touches(sopflow_app, customer_id=silent)] == ["sent", "skipped"]
    stats = api.get(f"/api/v1/sops/{sop}/stats").json()
    assert stats["steps"][0]["replied"] == 1 and stats["completed"] == 2


def test_conversion_within_window(api, sopflow_app, manual_clock):
    sop = create_sop(
        api,
        "convert",
        {
            "kind": "new_customer",
            "target": {},
            "goal": {"event_type": "order.paid"},
            "goal_window_days": 7,
            "steps": [{"delay": "1h", "actions": [send("buy")]}],
        },
    )
    fast, slow, never = (add_customer(api, f"wm-{x}") for x in ("fast", "slow", "never"))
    run_days(sopflow_app, manual_clock, 3)
    api.post(
        "/api/v1/events",
        json={"events": [{"type": "order.paid", "idempotency_key": "o-fast", "customer_id": fast}]},
    )
    run_days(sopflow_app, manual_clock, 10)
    api.post(
        "/api/v1/events",
        json={"events": [{"type": "order.paid", "idempotency_key": "o-slow", "customer_id": slow}]},
    )
    stats = api.get(f"/api/v1/sops/{sop}/stats").json()
    assert (
        stats["targeted"] == 3
        and stats["converted"] == 1
        and stats["conversion_rate"] == pytest.approx(1 / 3, abs=1e-4)
    )
    assert never


def test_definition_errors_name_the_path_and_change_nothing(api, sopflow_app):
    from tests.conftest import row_counts

    before = row_counts(sopflow_app)
    r = api.post(
        "/api/v1/sops",
        json={
            "name": "bad",
            "definition": {
                "kind": "nurture",
                "target": {"rule": {"field": "ordr_count", "op": "gt", "value": 1}},
                "steps": [
                    {
                        "day": 1,
                        "at": "25:00",
                        "actions": [{"type": "send", "channel": "sms", "text": "{{ oops"}],
                    },
                    {"delay": "soon", "actions": []},
                ],
                "batch": {"size": 0, "interval": "10m"},
                "on_complete": {"flow_to": 999},
            },
        },
    )
    assert r.status_code == 422
    fields = {e["field"] for e in r.json()["errors"]}
    assert {
        "definition.target.rule.field",
        "definition.steps[0].at",
        "definition.steps[0].actions[0].channel",
        "definition.steps[0].actions[0].text",
        "definition.steps[1].delay",
        "definition.steps[1].actions",
        "definition.batch.size",
        "definition.on_complete.flow_to",
    } <= fields, fields
    assert row_counts(sopflow_app) == before


def test_touch_listing_and_send_render(api, sopflow_app, manual_clock):
    sop = create_sop(
        api,
        "render",
        {
            "kind": "new_customer",
            "target": {},
            "steps": [{"delay": "1h", "actions": [send("你好 {{ customer.display_name }}")]}],
        },
    )
    r = api.post(
        "/api/v1/events",
        json={
            "events": [
                {
                    "type": "customer.added",
                    "idempotency_key": "n1",
                    "display_name": "王芳",
                    "identity": {"channel": "wecom", "external_id": "wm-n"},
                }
            ]
        },
    )
    c = r.json()["results"][0]["customer_id"]
    assert api.get(f"/api/v1/touches?customer_id={c}&status=scheduled").json()["items"][0]["sop_id"] == sop
    due = api.get(f"/api/v1/sops/{sop}/enrollments").json()["items"][0]["next_touch_at"]
    assert due is not None
    run_days(sopflow_app, manual_clock, 1)
    assert api.get(f"/api/v1/touches?customer_id={c}&status=sent").json()["items"][0]["sent_at"]
    assert [m.text for m in log_channel(sopflow_app, api).sent] == ["你好 王芳"]
    assert api.get("/api/v1/touches?due_after=yesterday").status_code == 422


def test_customers_api_changes_trigger_entry_rules(api, sopflow_app, manual_clock):
    """A customer created or edited through /api/v1/customers is evaluated at once,
    like one changed by an ingested event."""
    sop = create_sop(
        api,
        "vip-care",
        {
            "kind": "nurture",
            "target": {"rule": {"tags": {"any_of": ["vip"]}}},
            "steps": [{"delay": "1h", "actions": [send("welcome, vip")]}],
        },
    )
    created = api.post("/api/v1/customers", json={"display_name": "A", "tags": ["vip"]})
    assert created.status_code == 201, created.text
    plain = api.post("/api/v1/customers", json={"display_name": "B"}).json()["id"]
    assert api.patch(f"/api/v1/customers/{plain}", json={"tags_add": ["vip"]}).status_code == 200
    enrolled = [e["customer_id"] for e in api.get(f"/api/v1/sops/{sop}/enrollments").json()["items"]]
    assert sorted(enrolled) == sorted([created.json()["id"], plain])
    changes = api.get(f"/api/v1/events?customer_id={plain}").json()["items"]
    assert {e["type"] for e in changes} >= {"customer.created", "customer.updated"}

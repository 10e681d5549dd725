"""Journeys (F8–F13) through the HTTP API with the manual clock: stage rules,
automatic placement, the automation switch, reminders, entry SOPs, limits,
the sync lock, the board and the stats."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa

from tests.sop_support import add_customer, create_sop, log_channel, run_days, send, tag, touches

SHANGHAI = ZoneInfo("Asia/Shanghai")


@pytest.fixture(autouse=True)
def start_clock(manual_clock):
    manual_clock.set(datetime(2026, 3, 2, 10, 30, tzinfo=SHANGHAI))


def tags_rule(*tags: str) -> dict:
    return {"conditions": [{"tags": {"any_of": list(tags)}}]}


DENTAL = {
    "name": "dental",
    "reminder_channel": "log",
    "stages": [
        {"name": "咨询", "rules": [tags_rule("咨询")]},
        {
            "name": "extraction",
            "rules": [tags_rule("拔牙")],
            "reminders": [
                {
                    "day": 1,
                    "at": "09:00",
                    "text": "拔牙后护理：24小时内不要漱口，{{ customer.display_name }}",
                },
                {
                    "day": 7,
                    "at": "10:00",
                    "text": "请提醒 {{ customer.display_name }} 来复查",
                    "attachments": [
                        {"kind": "link", "url": "https://clinic.example/checkup", "title": "复查预约"}
                    ],
                },
            ],
        },
    ],
}


def create_journey(api, body, start=True) -> dict:
    r = api.post("/api/v1/journeys", json=body)
    assert r.status_code == 201, r.text
    journey = r.json()
    if start:
        r = api.post(f"/api/v1/journeys/{journey['id']}/start")
        assert r.status_code == 200, r.text
        journey = r.json()
    return journey


def stage_of(api, customer_id, journey) -> str | None:
    names = {s["id"]: s["name"] for s in journey["stages"]}
    rows = [
        h for h in api.get(f"/api/v1/customers/{customer_id}/stage-history").json() if h["left_at"] is None
    ]
    rows = [h for h in rows if h["pipeline_id"] == journey["pipeline_id"]]
    return names[rows[0]["stage_id"]] if rows else None


def test_dental_extraction_tag_places_and_reminds_the_first_adding_staff(api, sopflow_app, manual_clock):
    journey = create_journey(api, DENTAL)
    customer = add_customer(api, "wm-tooth", staff="dr_li")
    api.patch(f"/api/v1/customers/{customer}", json={"display_name": "王女士"})
    assert stage_of(api, customer, journey) is None
    entered = manual_clock.now()
    tag(api, customer, "拔牙")
    assert stage_of(api, customer, journey) == "extraction"
    history = api.get(f"/api/v1/customers/{customer}/stage-history").json()
    assert [(h["cause"], h["left_at"]) for h in history] == [("rule", None)]

    run_days(sopflow_app, manual_clock, 8)
    sent = [m for m in log_channel(sopflow_app, api).sent if m.touchpoint == "staff_notice"]
    assert [m.text for m in sent] == ["拔牙后护理：24小时内不要漱口，王女士", "请提醒 王女士 来复查"]
    assert len(sent) == 2
    assert {m.staff_external_id for m in sent} == {"dr_li"}
    assert sent[1].attachments[0].url == "https://clinic.example/checkup"
    rows = [t for t in touches(sopflow_app, customer_id=customer) if t.status == "sent"]
    local = [t.sent_at.astimezone(SHANGHAI) for t in rows]
    start_day = entered.astimezone(SHANGHAI).date()
    assert [((d.date() - start_day).days, d.hour) for d in local] == [(1, 9), (7, 10)]
    # who was told is on the touch and on its touch.sent event
    dr_li = api.get("/api/v1/staff").json()
    [staff_id] = [m["id"] for m in dr_li if m["external_id"] == "dr_li"]
    assert all(t.outcome["staff"] == {"id": staff_id, "external_id": "dr_li"} for t in rows)
    sent_events = api.get(f"/api/v1/events?type=touch.sent&customer_id={customer}").json()["items"]
    assert [e["payload"]["staff"]["external_id"] for e in sent_events] == ["dr_li", "dr_li"]


def test_leaving_the_stage_cancels_its_pending_reminders(api, sopflow_app, manual_clock):
    journey = create_journey(api, DENTAL)
    customer = add_customer(api, "wm-back")
    tag(api, customer, "拔牙")
    run_days(sopflow_app, manual_clock, 2)  # day-1 reminder out
    stage_id = {s["name"]: s["id"] for s in journey["stages"]}["咨询"]
    r = api.post(f"/api/v1/customers/{customer}/stage", json={"stage_id": stage_id, "cause": "manual"})
    assert r.status_code == 200, r.text
    run_days(sopflow_app, manual_clock, 10)
    statuses = [t.status for t in touches(sopflow_app, customer_id=customer)]
    assert statuses == ["sent", "cancelled"]
    # the staff member's move stands: the rule does not pull the customer back
    causes = [h["cause"] for h in api.get(f"/api/v1/customers/{customer}/stage-history").json()]
    assert causes == ["rule", "manual"] and stage_of(api, customer, journey) == "咨询"


def test_furthest_matching_stage_wins_and_moves_are_forward_only(api, sopflow_app):
    journey = create_journey(
        api,
        {
            "name": "life",
            "stages": [
                {"name": "激活", "rules": [tags_rule("a")]},
                {"name": "兴趣", "rules": [tags_rule("b")]},
                {"name": "孵化", "rules": [tags_rule("c")]},
            ],
        },
    )
    c = add_customer(api, "wm-1", tags=["a", "b"])
    assert stage_of(api, c, journey) == "兴趣"  # both match: the further one
    api.post(
        "/api/v1/events",
        json={
            "events": [
                {
                    "type": "customer.updated",
                    "idempotency_key": "drop-b",
                    "customer_id": c,
                    "tags_remove": ["b"],
                }
            ]
        },
    )
    assert stage_of(api, c, journey) == "兴趣"  # only 激活 matches now: no move backward
    tag(api, c, "c")
    assert stage_of(api, c, journey) == "孵化"


def test_stage_condition_chains_moves_within_the_loop_guard(api, sopflow_app):
    journey = create_journey(
        api,
        {
            "name": "chain",
            "stages": [
                {"name": "one", "rules": [tags_rule("x")]},
                {
                    "name": "two",
                    "rules": [{"conditions": [{"stage": {"in": ["one"]}}, {"tags": {"any_of": ["x"]}}]}],
                },
            ],
        },
    )
    c = add_customer(api, "wm-chain", tags=["x"])
    assert stage_of(api, c, journey) == "two"
    assert [h["cause"] for h in api.get(f"/api/v1/customers/{c}/stage-history").json()] == ["rule", "rule"]


def test_automation_off_nobody_enters_automatically_but_staff_can_move(api, sopflow_app):
    journey = create_journey(api, {**DENTAL, "automation": False})
    c = add_customer(api, "wm-off", tags=["拔牙"])
    assert stage_of(api, c, journey) is None
    stage_id = journey["stages"][1]["id"]
    assert api.post(f"/api/v1/customers/{c}/stage", json={"stage_id": stage_id}).status_code == 200
    assert stage_of(api, c, journey) == "extraction"
    assert len(touches(sopflow_app, customer_id=c)) == 2  # reminders follow a manual move too


def test_stage_entry_sop_enrols_the_customer(api, sopflow_app, manual_clock):
    sop_id = create_sop(
        api,
        "trial follow-up",
        {
            "kind": "nurture",
            "target": {"rule": {"tags": {"any_of": ["never-matches"]}}},
            "steps": [{"day": 1, "at": "10:00", "actions": [send("体验课怎么样？")]}],
        },
    )
    body = {
        "name": "edu",
        "stages": [{"name": "trial", "rules": [tags_rule("试听")], "entry_sop_id": sop_id}],
    }
    create_journey(api, body)
    c = add_customer(api, "wm-trial", tags=["试听"])
    run_days(sopflow_app, manual_clock, 2)
    assert [m.text for m in log_channel(sopflow_app, api).sent if m.touchpoint == "private_chat"] == [
        "体验课怎么样？"
    ]
    enrolments = api.get(f"/api/v1/sops/{sop_id}/enrollments").json()["items"]
    assert [e["customer_id"] for e in enrolments] == [c]


def test_forwarded_reminders_respect_the_daily_push_cap(api, sopflow_app, manual_clock):
    body = {
        "name": "cap",
        "reminder_channel": "log",
        "stages": [
            {
                "name": "s",
                "rules": [tags_rule("t")],
                "reminders": [{"day": 1, "at": "09:00", "text": "a"}, {"day": 1, "at": "10:00", "text": "b"}],
            }
        ],
    }
    create_journey(api, body)
    c = add_customer(api, "wm-cap", tags=["t"])
    run_days(sopflow_app, manual_clock, 3)
    rows = touches(sopflow_app, customer_id=c)
    days = [t.sent_at.astimezone(SHANGHAI).date() for t in rows]
    assert [t.status for t in rows] == ["sent", "sent"] and days[0] != days[1]
    assert rows[1].defer_reason == "customer_cap"


def test_a_reminder_for_a_customer_with_no_owner_is_skipped_and_uses_no_slot(api, sopflow_app, manual_clock):
    from sopflow.models import SendQuota

    body = {
        "name": "orphans",
        "reminder_channel": "log",
        "stages": [
            {"name": "s", "rules": [tags_rule("t")], "reminders": [{"day": 1, "at": "09:00", "text": "a"}]}
        ],
    }
    create_journey(api, body)
    r = api.post("/api/v1/customers", json={"display_name": "nobody's", "tags": ["t"]})
    assert r.status_code == 201, r.text
    c = r.json()["id"]
    run_days(sopflow_app, manual_clock, 3)
    [row] = touches(sopflow_app, customer_id=c)
    assert row.status == "skipped" and "no owner" in row.outcome["reason"]
    assert not [m for m in log_channel(sopflow_app, api).sent if m.touchpoint == "staff_notice"]
    with sopflow_app.tx() as s:
        used = s.scalar(
            sa.select(sa.func.coalesce(sa.func.sum(SendQuota.used), 0)).where(SendQuota.customer_id == c)
        )
    assert used == 0  # the customer's push that day is still free


def test_follow_up_switch_notifies_staff_at_entry(api, sopflow_app, manual_clock):
    body = {**DENTAL, "follow_up_reminders": True, "stage_reminders": False}
    create_journey(api, body)
    c = add_customer(api, "wm-fu", staff="dr_wang")
    api.patch(f"/api/v1/customers/{c}", json={"display_name": "李先生"})
    tag(api, c, "拔牙")
    run_days(sopflow_app, manual_clock, 10)
    sent = [m for m in log_channel(sopflow_app, api).sent if m.touchpoint == "staff_notice"]
    assert [m.text for m in sent] == ["客户 李先生 进入「extraction」阶段，请及时跟进。"]
    assert sent[0].staff_external_id == "dr_wang"


# -- limits and validation -------------------------------------------------------------------------


def errors(r) -> dict[str, str]:
    return {e["field"]: e["message"] for e in r.json().get("errors", [])}


def test_limits_give_clear_errors_and_change_nothing(api):
    eleven = {"name": "big", "stages": [{"name": f"s{i}"} for i in range(11)]}
    r = api.post("/api/v1/journeys", json=eleven)
    assert r.status_code == 422 and "at most 10 stages" in errors(r)["stages"]

    six_rules = {"name": "r", "stages": [{"name": "s", "rules": [tags_rule(f"t{i}") for i in range(6)]}]}
    r = api.post("/api/v1/journeys", json=six_rules)
    assert r.status_code == 422 and "at most 5 rules" in errors(r)["stages[0].rules"]

    twice = {
        "name": "twice",
        "stages": [
            {"name": "a"},
            {"name": "b", "rules": [{"conditions": [{"stage": {"in": ["a"]}}, {"stage": {"in": ["b"]}}]}]},
        ],
    }
    r = api.post("/api/v1/journeys", json=twice)
    assert r.status_code == 422
    assert "appears twice" in errors(r)["stages[1].rules[0].conditions[1]"]

    typo = {"name": "typo", "stages": [{"name": "a", "rules": [{"conditions": [{"stage": {"in": ["b"]}}]}]}]}
    r = api.post("/api/v1/journeys", json=typo)
    assert (
        r.status_code == 422
        and "has no stage 'b'" in errors(r)["stages[0].rules[0].conditions[0].stage.in[0]"]
    )

    six_conditions = {
        "name": "c6",
        "stages": [
            {"name": "a", "rules": [{"conditions": [{"churned": False}] + [{"tags": {"any_of": ["x"]}}] * 5}]}
        ],
    }
    r = api.post("/api/v1/journeys", json=six_conditions)
    assert r.status_code == 422 and "at most 5 conditions" in errors(r)["stages[0].rules[0].conditions"]

    no_channel = {
        "name": "nc",
        "stages": [{"name": "a", "reminders": [{"day": 1, "at": "25:00", "text": "x"}]}],
    }
    r = api.post("/api/v1/journeys", json=no_channel)
    assert r.status_code == 422
    assert {"reminder_channel", "stages[0].reminders[0].at"} <= set(errors(r))

    assert api.get("/api/v1/journeys").json() == []
    assert api.get("/api/v1/pipelines").json() == []


def test_at_most_three_active_journeys(api):
    for i in range(3):
        create_journey(api, {"name": f"j{i}", "stages": [{"name": "s"}]})
    fourth = create_journey(api, {"name": "j3", "stages": [{"name": "s"}]}, start=False)
    r = api.post(f"/api/v1/journeys/{fourth['id']}/start")
    assert r.status_code == 409 and "at most 3" in r.json()["detail"]
    first = api.get("/api/v1/journeys").json()[0]
    assert api.post(f"/api/v1/journeys/{first['id']}/stop").status_code == 200
    assert api.post(f"/api/v1/journeys/{fourth['id']}/start").status_code == 200


def test_edit_keeps_stage_ids_and_history(api, sopflow_app):
    journey = create_journey(api, DENTAL)
    c = add_customer(api, "wm-edit", tags=["拔牙"])
    stages = journey["stages"]
    body = {
        "stages": [
            {"id": stages[1]["id"], "name": "拔牙后", "rules": stages[1]["rules"]},
            {"id": stages[0]["id"], "name": "咨询"},
        ]
    }
    r = api.patch(f"/api/v1/journeys/{journey['id']}", json=body)
    assert r.status_code == 200, r.text
    assert [(s["id"], s["name"], s["position"]) for s in r.json()["stages"]] == [
        (stages[1]["id"], "拔牙后", 0),
        (stages[0]["id"], "咨询", 1),
    ]
    assert stage_of(api, c, r.json()) == "拔牙后"
    # a stage holding customers cannot be dropped
    r = api.patch(
        f"/api/v1/journeys/{journey['id']}", json={"stages": [{"id": stages[0]["id"], "name": "咨询"}]}
    )
    assert r.status_code == 409 and "holds customers" in r.json()["detail"]


# -- sync, lock, board, stats ----------------------------------------------------------------------


def test_sync_places_existing_customers_locks_edits_and_is_idempotent(api, sopflow_app, manual_clock):
    from sopflow.engine.journeys.sync import run_sync

    journey = create_journey(api, DENTAL, start=False)
    ids = [add_customer(api, f"wm-s{i}", tags=["拔牙"] if i % 3 == 0 else ["咨询"]) for i in range(9)]
    assert api.post(f"/api/v1/journeys/{journey['id']}/sync").status_code == 409  # not active yet
    api.post(f"/api/v1/journeys/{journey['id']}/start")
    r = api.post(f"/api/v1/journeys/{journey['id']}/sync")
    assert r.status_code == 202 and r.json()["state"] == "pending" and r.json()["total"] == 9
    r = api.patch(f"/api/v1/journeys/{journey['id']}", json={"automation": False})
    assert r.status_code == 409 and "locked while its sync runs" in r.json()["detail"]
    assert api.post(f"/api/v1/journeys/{journey['id']}/sync").status_code == 409

    seen = []
    done = run_sync(
        sopflow_app, api.tenant_id, journey["id"], batch=4, progress=lambda p: seen.append(p["done"])
    )
    assert seen == [4, 8, 9] and done["placed"] == 9 and done["state"] == "done"
    assert [stage_of(api, c, journey) for c in ids] == [
        "extraction" if i % 3 == 0 else "咨询" for i in range(9)
    ]
    assert all(
        h["cause"] == "sync" for c in ids for h in api.get(f"/api/v1/customers/{c}/stage-history").json()
    )
    assert len(touches(sopflow_app, customer_id=ids[0])) == 2  # reminders for synced customers too

    assert api.patch(f"/api/v1/journeys/{journey['id']}", json={"automation": False}).status_code == 200
    api.post(f"/api/v1/journeys/{journey['id']}/sync")
    again = run_sync(sopflow_app, api.tenant_id, journey["id"])
    assert again["placed"] == 0 and again["done"] == 9


def test_a_sync_whose_process_died_unlocks_after_the_stale_time(api, sopflow_app, manual_clock):
    journey = create_journey(api, DENTAL)
    api.post(f"/api/v1/journeys/{journey['id']}/sync")
    assert api.patch(f"/api/v1/journeys/{journey['id']}", json={"automation": False}).status_code == 409
    manual_clock.advance(timedelta(minutes=11))
    assert api.patch(f"/api/v1/journeys/{journey['id']}", json={"automation": False}).status_code == 200


def test_board_counts_and_pages_per_stage(api, sopflow_app):
    journey = create_journey(api, DENTAL)
    ids = [add_customer(api, f"wm-b{i}", tags=["拔牙"]) for i in range(5)]
    add_customer(api, "wm-c", tags=["咨询"])
    board = api.get(f"/api/v1/journeys/{journey['id']}/board", params={"limit": 2}).json()
    counts = {s["name"]: s["count"] for s in board["stages"]}
    assert counts == {"咨询": 1, "extraction": 5}
    col = board["stages"][1]
    got = [c["id"] for c in col["customers"]]
    cursor = col["next_cursor"]
    while cursor:
        page = api.get(
            f"/api/v1/journeys/{journey['id']}/board",
            params={"limit": 2, "stage_id": col["id"], "cursor": cursor},
        ).json()["stages"][0]
        got += [c["id"] for c in page["customers"]]
        cursor = page["next_cursor"]
    assert got == sorted(ids, reverse=True)


def test_stats_now_over_time_and_conversion(api, sopflow_app, manual_clock):
    journey = create_journey(api, DENTAL)
    a = add_customer(api, "wm-x", tags=["咨询"])
    add_customer(api, "wm-y", tags=["咨询"])
    manual_clock.advance(timedelta(days=1))
    tag(api, a, "拔牙")
    stats = api.get(f"/api/v1/journeys/{journey['id']}/stats", params={"days": 2}).json()
    by_name = {s["name"]: s for s in stats["stages"]}
    assert by_name["咨询"]["customers"] == 1 and by_name["咨询"]["entered"] == 2
    assert by_name["咨询"]["conversion_to_next"] == 0.5
    assert by_name["extraction"]["customers"] == 1
    ids = {s["name"]: str(s["id"]) for s in journey["stages"]}
    assert [d["counts"] for d in stats["trend"]] == [{ids["咨询"]: 2}, {ids["咨询"]: 1, ids["extraction"]: 1}]


def test_stopping_cancels_pending_reminders(api, sopflow_app, manual_clock):
    journey = create_journey(api, DENTAL)
    c = add_customer(api, "wm-stop", tags=["拔牙"])
    assert api.post(f"/api/v1/journeys/{journey['id']}/stop").status_code == 200
    run_days(sopflow_app, manual_clock, 9)
    assert {t.status for t in touches(sopflow_app, customer_id=c)} == {"cancelled"}


def test_hidden_reminder_sops_are_not_user_editable(api, sopflow_app):
    journey = create_journey(api, DENTAL)
    sop_id = journey["stages"][1]["reminder_sop_id"]
    r = api.patch(f"/api/v1/sops/{sop_id}", json={"name": "mine"})
    assert r.status_code == 409 and f"journeys/{journey['id']}" in r.json()["detail"]
    with sopflow_app.tx() as s:
        from sopflow.models import Sop

        assert s.scalar(sa.select(Sop.name).where(Sop.id == sop_id)).endswith("reminders")


def test_a_journeys_stages_are_edited_through_the_journey(api):
    journey = create_journey(api, DENTAL)
    r = api.post(f"/api/v1/pipelines/{journey['pipeline_id']}/stages", json={"name": "eleventh"})
    assert r.status_code == 409 and f"/api/v1/journeys/{journey['id']}" in r.json()["detail"]
    r = api.patch(f"/api/v1/stages/{journey['stages'][0]['id']}", json={"name": "x"})
    assert r.status_code == 409
    assert [s["name"] for s in api.get(f"/api/v1/journeys/{journey['id']}").json()["stages"]] == [
        "咨询",
        "extraction",
    ]


def test_seed_003_education_pipeline_driven_by_keyword_rules(api, sopflow_app, manual_clock):
    """message → keyword rule → tag → stage → SOP: the seed 003 loop."""
    sop_id = create_sop(
        api,
        "trial lesson follow-up",
        {
            "kind": "nurture",
            "target": {"rule": {"tags": {"any_of": ["never"]}}},
            "steps": [{"day": 1, "at": "19:00", "actions": [send("试听课感觉怎么样？")]}],
        },
    )
    rules = [
        ("感兴趣", ["感兴趣", "了解一下"]),
        ("要资料", ["资料", "课程表"]),
        ("询价", ["多少钱", "价格", "学费"]),
        ("试听", ["试听", "体验课"]),
    ]
    for tag_name, words in rules:
        r = api.post(
            "/api/v1/keyword-rules",
            json={"name": tag_name, "keywords": words, "actions": [{"type": "add_tag", "tag": tag_name}]},
        )
        assert r.status_code == 201, r.text
    stages = [
        {"name": "interest", "rules": [tags_rule("感兴趣")]},
        {"name": "materials", "rules": [tags_rule("要资料")]},
        {"name": "price evaluation", "rules": [tags_rule("询价")]},
        {"name": "trial", "rules": [tags_rule("试听")], "entry_sop_id": sop_id},
        {"name": "purchase", "rules": [{"conditions": [{"events": {"type": "order.paid", "min": 1}}]}]},
        {"name": "renewal", "rules": [{"conditions": [{"events": {"type": "order.paid", "min": 2}}]}]},
        {"name": "lost", "rules": [{"conditions": [{"churned": True}]}]},
    ]
    journey = create_journey(api, {"name": "education", "stages": stages})
    c = add_customer(api, "wm-edu")

    def says(text: str, n: int) -> None:
        r = api.post(
            "/api/v1/events",
            json={
                "events": [
                    {
                        "type": "message.received",
                        "idempotency_key": f"msg-{n}",
                        "identity": {"channel": "wecom", "external_id": "wm-edu"},
                        "payload": {"text": text},
                    }
                ]
            },
        )
        assert r.status_code == 200, r.text

    says("我想了解一下你们的编程课", 1)
    assert stage_of(api, c, journey) == "interest"
    says("请问学费多少钱？", 2)
    assert stage_of(api, c, journey) == "price evaluation"  # materials skipped: the furthest match wins
    says("能先发我课程表吗", 3)
    assert stage_of(api, c, journey) == "price evaluation"  # forward only
    says("周末可以试听吗", 4)
    assert stage_of(api, c, journey) == "trial"
    run_days(sopflow_app, manual_clock, 2)
    assert [m.text for m in log_channel(sopflow_app, api).sent] == ["试听课感觉怎么样？"]
    history = api.get(f"/api/v1/customers/{c}/stage-history").json()
    assert [h["cause"] for h in history] == ["rule", "rule", "rule"]


def test_a_saved_segment_can_be_a_stage_condition(api, sopflow_app):
    seg = api.post("/api/v1/segments", json={"name": "vip", "rule": {"tags": {"any_of": ["vip"]}}}).json()
    body = {"name": "seg", "stages": [{"name": "vip", "rules": [{"conditions": [{"segment": seg["id"]}]}]}]}
    journey = create_journey(api, body)
    assert journey["stages"][0]["rules"] == [{"conditions": [{"tags": {"any_of": ["vip"]}}]}]  # expanded
    c = add_customer(api, "wm-seg", tags=["vip"])
    assert stage_of(api, c, journey) == "vip"
    bad = {"name": "bad", "stages": [{"name": "s", "rules": [{"conditions": [{"segment": 999}]}]}]}
    r = api.post("/api/v1/journeys", json=bad)
    assert r.status_code == 422 and "stages[0].rules[0].conditions[0].segment" in errors(r)


def test_tags_set_by_sop_actions_and_end_actions_move_the_customer_at_once(api, sopflow_app, manual_clock):
    journey = create_journey(
        api,
        {
            "name": "auto",
            "stages": [
                {"name": "nurtured", "rules": [tags_rule("nurtured")]},
                {"name": "done", "rules": [tags_rule("sop-done")]},
            ],
        },
    )
    create_sop(
        api,
        "tagging",
        {
            "kind": "nurture",
            "target": {"rule": {"tags": {"any_of": ["start"]}}},
            "on_complete": {"tags_add": ["sop-done"]},
            "steps": [
                {"day": 1, "at": "10:00", "actions": [{"type": "add_tag", "tag": "nurtured"}]},
                {"day": 3, "at": "10:00", "actions": [send("last")]},
            ],
        },
    )
    c = add_customer(api, "wm-auto", tags=["start"])
    run_days(sopflow_app, manual_clock, 2)
    assert stage_of(api, c, journey) == "nurtured"  # moved by the step's add_tag, no other event needed
    run_days(sopflow_app, manual_clock, 2)
    assert stage_of(api, c, journey) == "done"  # moved by the SOP's end action
    events = api.get("/api/v1/events", params={"customer_id": c, "limit": 100}).json()["items"]
    changes = [e["payload"] for e in events if e["type"] == "customer.updated" and e["source"] == "sopflow"]
    assert [(p["cause"], p["tags_added"]) for p in changes] == [
        ("sop_action", ["nurtured"]),
        ("sop_end", ["sop-done"]),
    ]

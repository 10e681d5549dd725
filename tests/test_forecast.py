"""The send calendar forecast equals what the manual clock then delivers, touch
for touch and day for day, and a forecast writes nothing."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from tests.conftest import row_counts
from tests.sop_support import add_customer, create_sop, run_to, send, touches
from tests.test_journeys import create_journey, tags_rule

SHANGHAI = ZoneInfo("Asia/Shanghai")


@pytest.fixture(autouse=True)
def start_clock(manual_clock):
    manual_clock.set(datetime(2026, 3, 2, 10, 30, tzinfo=SHANGHAI))  # a Monday


def nurture(tag: str, steps: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    return {"kind": "nurture", "target": {"rule": {"tags": {"any_of": [tag]}}}, "steps": steps, **extra}


def at(day: int, hhmm: str, text: str, **extra: Any) -> dict[str, Any]:
    return {"day": day, "at": hhmm, "actions": [send(text)], **extra}


def busy_tenant(api: Any) -> list[int]:
    """Several SOPs competing for the same customers' one push a day, quiet hours,
    a batch window, a reply wait, a random split, moments (not capped), and a
    journey whose stage reminders are forwarded (capped) — then customers."""
    create_sop(
        api,
        "care",
        nurture(
            "a",
            [
                at(1, "09:00", "care 1"),
                at(1, "10:00", "care 2"),
                at(2, "10:00", "care 3", wait_for_reply={"timeout": "3d", "on_timeout": "continue"}),
                {"delay": "2h", "actions": [send("care 4")]},
                at(6, "23:30", "care 5"),
            ],
            quiet_hours={"start": "22:00", "end": "08:00"},
        ),
    )
    create_sop(
        api,
        "promo",
        nurture(
            "b",
            [
                at(1, "09:30", "promo 1"),
                {"day": 2, "at": "09:30", "actions": [send("promo moments", "moments")]},
                at(3, "09:00", "promo 2"),
                at(12, "09:00", "promo 3"),
            ],
            batch={"size": 2, "interval": "1h"},  # the rest wait for 10:00, inside the quiet minutes
            quiet_hours={"start": "10:00", "end": "10:20"},
        ),
    )
    create_sop(
        api,
        "split",
        {
            "kind": "nurture",
            "target": {"rule": {"tags": {"any_of": ["a"]}}},
            "arms": [
                {"name": "one", "weight": 1, "steps": [at(1, "09:00", "one")]},
                {"name": "two", "weight": 1, "steps": [at(1, "11:00", "two a"), at(20, "11:00", "two b")]},
            ],
        },
    )
    create_journey(
        api,
        {
            "name": "dental",
            "reminder_channel": "log",
            "follow_up_reminders": True,
            "stages": [
                {
                    "name": "extraction",
                    "rules": [tags_rule("t")],
                    "reminders": [
                        {"day": 1, "at": "09:00", "text": "reminder 1"},
                        {"day": 7, "at": "10:00", "text": "reminder 2"},
                    ],
                }
            ],
        },
    )
    tags = [["a"], ["a", "b"], ["a", "b", "t"], ["b"], ["b"], ["b", "t"], ["t"], ["a", "t"], ["b"], ["a"]]
    customers = [add_customer(api, f"wm-{i}", tags=t) for i, t in enumerate(tags)]
    add_customer(api, "wm-ny", tags=["a", "b"], timezone="America/New_York")
    return customers


def delivered(app: Any, until: datetime) -> list[tuple[int, int, int, str]]:
    return sorted(
        (t.customer_id, t.sop_id, t.step_index, t.sent_at.isoformat())
        for t in touches(app)
        if t.sent_at is not None and t.sent_at <= until
    )


def forecast_sends(body: dict[str, Any]) -> list[tuple[int, int, int, str]]:
    return sorted((t["customer_id"], t["sop_id"], t["step_index"], t["sends_at"]) for t in body["touches"])


def test_the_forty_day_forecast_is_what_the_manual_clock_delivers(api, sopflow_app, manual_clock):
    busy_tenant(api)
    run_to(sopflow_app, manual_clock, manual_clock.now())  # what is due at once goes out first
    now = manual_clock.now()
    until = now + timedelta(days=40)
    before = row_counts(sopflow_app)
    r = api.get("/api/v1/forecast?days=40&touches=true")
    assert r.status_code == 200, r.text
    body = r.json()
    assert row_counts(sopflow_app) == before  # a forecast writes nothing
    already = delivered(sopflow_app, now)

    run_to(sopflow_app, manual_clock, until)
    actual = [t for t in delivered(sopflow_app, until) if t not in already]
    predicted = forecast_sends(body)
    assert len(actual) > 40 and predicted == actual

    # the counts agree with the touches, and the rules that moved them are named
    assert body["totals"]["sent"] == len(actual)
    reasons = {r for row in body["calendar"] for r in row["deferred"]}
    assert {"customer_cap", "batch", "quiet_hours", "waiting_for_reply"} <= reasons
    sent_per_day: dict[str, int] = {}
    for _, _, _, when in actual:
        day = datetime.fromisoformat(when).astimezone(SHANGHAI).date().isoformat()
        sent_per_day[day] = sent_per_day.get(day, 0) + 1
    forecast_per_day: dict[str, int] = {}
    for row in body["calendar"]:
        forecast_per_day[row["day"]] = forecast_per_day.get(row["day"], 0) + row["sent"]
    assert {d: n for d, n in forecast_per_day.items() if n} == sent_per_day
    assert body["slipping"] and all(
        s["sends_at"] is None or s["sends_at"] > s["planned_at"] for s in body["slipping"]
    )


def test_an_edit_compared_through_the_forecast_shows_the_difference_and_saves_nothing(
    api, sopflow_app, manual_clock
):
    sop = create_sop(api, "care", nurture("a", [at(1, "09:00", "one"), at(3, "09:00", "two")]))
    for i in range(3):
        add_customer(api, f"wm-{i}", tags=["a"])
    run_to(sopflow_app, manual_clock, manual_clock.now())
    stored = api.get(f"/api/v1/sops/{sop}").json()
    before = row_counts(sopflow_app)

    as_is = api.post(f"/api/v1/sops/{sop}/forecast", json={"days": 10, "touches": True})
    assert as_is.status_code == 200, as_is.text
    edited = nurture("a", [at(2, "09:00", "one"), at(3, "09:00", "two"), at(5, "09:00", "three")])
    changed = api.post(
        f"/api/v1/sops/{sop}/forecast", json={"days": 10, "definition": edited, "touches": True}
    )
    assert changed.status_code == 200, changed.text
    assert row_counts(sopflow_app) == before
    assert api.get(f"/api/v1/sops/{sop}").json() == stored  # no new version, nothing saved

    def days(body: dict[str, Any]) -> dict[str, int]:
        return {row["day"]: row["sent"] for row in body["calendar"] if row["sent"]}

    assert days(as_is.json()) == {"2026-03-03": 3, "2026-03-05": 3}
    assert days(changed.json()) == {"2026-03-04": 3, "2026-03-05": 3, "2026-03-07": 3}
    assert changed.json()["as_if_started_now"] and not as_is.json()["as_if_started_now"]

    bad = api.post(f"/api/v1/sops/{sop}/forecast", json={"days": 91})
    assert bad.status_code == 400 or bad.status_code == 422
    bad = api.post(f"/api/v1/sops/{sop}/forecast", json={"definition": {"kind": "x"}})
    assert bad.status_code == 422 and "definition.kind" in bad.text
    assert row_counts(sopflow_app) == before


def test_a_drafts_forecast_is_what_starting_it_then_delivers(api, sopflow_app, manual_clock):
    create_sop(api, "other", nurture("a", [at(1, "09:00", "other")]))
    draft = create_sop(api, "draft", nurture("a", [at(1, "09:00", "d1"), at(2, "09:00", "d2")]), start=False)
    for i in range(4):
        add_customer(api, f"wm-{i}", tags=["a"])
    run_to(sopflow_app, manual_clock, manual_clock.now())
    body = api.post(f"/api/v1/sops/{draft}/forecast", json={"days": 10, "touches": True}).json()
    predicted = sorted((t["customer_id"], t["step_index"], t["sends_at"]) for t in body["touches"])
    assert len(predicted) == 8
    assert api.post(f"/api/v1/sops/{draft}/start").status_code == 200
    run_to(sopflow_app, manual_clock, manual_clock.now() + timedelta(days=10))
    actual = sorted(
        (t.customer_id, t.step_index, t.sent_at.isoformat())
        for t in touches(sopflow_app, sop_id=draft)
        if t.sent_at
    )
    assert predicted == actual  # the other SOP took day 1's slot: the draft's first step waits a day
    assert {r for row in body["calendar"] for r in row["deferred"]} == {"customer_cap"}

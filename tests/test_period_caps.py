"""Weekly and monthly per-customer caps a channel declares: a touch over the
cap waits for the next period, in order, never dropped (manual clock)."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest

from tests.sop_support import add_customer, create_sop, run_to, touches
from tests.test_hooks import app_with, plugin  # noqa: F401  (app_with is a fixture)


def capped_app(app_with: Any, count: int, period: str) -> tuple[Any, Any]:  # noqa: F811
    from sopflow_sdk import Capabilities, Channel, ChannelSpec, CustomerCap, SendReceipt

    class Capped(Channel):
        name = "capped"
        capabilities = Capabilities(
            touchpoints=frozenset({"private_chat"}), customer_cap=CustomerCap(count=count, period=period)
        )

        def __init__(self, config, secrets):
            pass

        def send(self, message):
            return SendReceipt("sent")

    channels = plugin("capped", register_channels=lambda register: register(ChannelSpec("capped", Capped)))
    app, api = app_with(("capped", channels))
    assert api.post("/api/v1/channel-accounts", json={"channel": "capped", "name": "c"}).status_code == 201
    return app, api


def steps(channel: str, days: range, at: str = "10:00") -> list[dict[str, Any]]:
    return [
        {"day": d, "at": at, "actions": [{"type": "send", "channel": channel, "text": f"day {d}"}]}
        for d in days
    ]


def local_sends(app: Any, customer: int) -> list[tuple[int, date | None, str, str | None]]:
    from zoneinfo import ZoneInfo

    tz = ZoneInfo("Asia/Shanghai")
    return [
        (t.step_index, t.sent_at and t.sent_at.astimezone(tz).date(), t.status, t.defer_reason)
        for t in touches(app, customer_id=customer)
    ]


def test_a_customer_at_the_monthly_cap_gets_nothing_more_that_month_and_the_rest_moves_on_in_order(
    app_with,  # noqa: F811
    manual_clock,
):
    """Two pushes a month on the capped channel, one a day from the tenant: five
    steps on 25–29 January go out 25 and 26 January, 1 and 2 February and 1 March."""
    from datetime import UTC, datetime

    app, api = capped_app(app_with, 2, "month")
    create_sop(
        api,
        "m",
        {
            "kind": "nurture",
            "target": {"rule": {"tags": {"any_of": ["m"]}}},
            "steps": steps("capped", range(20, 25)),
        },
    )
    customer = add_customer(api, "wm-m", tags=["m"])  # enrolled Monday 5 January, 09:00 local
    run_to(app, manual_clock, datetime(2026, 3, 10, tzinfo=UTC))
    got = local_sends(app, customer)
    assert [(i, day) for i, day, _, _ in got] == [
        (0, date(2026, 1, 25)),
        (1, date(2026, 1, 26)),
        (2, date(2026, 2, 1)),
        (3, date(2026, 2, 2)),
        (4, date(2026, 3, 1)),
    ]
    assert [status for _, _, status, _ in got] == ["sent"] * 5  # nothing dropped
    # the third waited for February by the monthly cap; the fourth then waited a day by the daily cap
    assert [reason for *_, reason in got] == [
        None,
        None,
        "customer_month_cap",
        "customer_cap",
        "customer_month_cap",
    ]


def test_the_monthly_cap_counts_pushes_on_every_channel_and_leaves_other_customers_alone(
    app_with,  # noqa: F811
    manual_clock,
):
    """A push on the log channel uses one of the month's two: the capped channel's
    next step waits for February.  Another customer of the same SOP is not held."""
    from datetime import UTC, datetime

    app, api = capped_app(app_with, 2, "month")
    rule = {"tags": {"any_of": ["m"]}}
    create_sop(api, "log", {"kind": "nurture", "target": {"rule": rule}, "steps": steps("log", range(1, 2))})
    create_sop(
        api, "cap", {"kind": "nurture", "target": {"rule": rule}, "steps": steps("capped", range(2, 4))}
    )
    first = add_customer(api, "wm-a", tags=["m"])
    run_to(app, manual_clock, datetime(2026, 2, 10, tzinfo=UTC))
    second = add_customer(api, "wm-b", tags=["m"])  # enrolled 10 February: a fresh month
    run_to(app, manual_clock, datetime(2026, 3, 10, tzinfo=UTC))
    days = {c: sorted(d for _, d, _, _ in local_sends(app, c)) for c in (first, second)}
    assert days[first] == [date(2026, 1, 6), date(2026, 1, 7), date(2026, 2, 1)]
    assert days[second] == [date(2026, 2, 11), date(2026, 2, 12), date(2026, 3, 1)]


def test_a_weekly_cap_moves_the_rest_to_the_next_monday(app_with, manual_clock):  # noqa: F811
    """One push a week: steps on Tuesday to Thursday go out Tuesday, and the next two Mondays."""
    from datetime import UTC, datetime

    app, api = capped_app(app_with, 1, "week")
    create_sop(
        api,
        "w",
        {
            "kind": "nurture",
            "target": {"rule": {"tags": {"any_of": ["w"]}}},
            "steps": steps("capped", range(1, 4)),
        },
    )
    customer = add_customer(api, "wm-w", tags=["w"])  # Monday 5 January
    run_to(app, manual_clock, datetime(2026, 2, 1, tzinfo=UTC))
    got = local_sends(app, customer)
    assert [day for _, day, _, _ in got] == [date(2026, 1, 6), date(2026, 1, 12), date(2026, 1, 19)]
    assert [reason for *_, reason in got] == [None, "customer_week_cap", "customer_week_cap"]


@pytest.mark.parametrize(
    ("day", "period", "start", "following"),
    [
        (date(2026, 1, 31), "month", date(2026, 1, 1), date(2026, 2, 1)),
        (date(2026, 12, 15), "month", date(2026, 12, 1), date(2027, 1, 1)),
        (date(2026, 1, 4), "week", date(2025, 12, 29), date(2026, 1, 5)),  # a Sunday
        (date(2026, 1, 5), "week", date(2026, 1, 5), date(2026, 1, 12)),  # a Monday
    ],
)
def test_period_bounds(day, period, start, following):
    from sopflow.engine.delivery.period_caps import next_period_start, period_start

    assert (period_start(day, period), next_period_start(day, period)) == (start, following)


def test_the_forecast_shows_the_monthly_cap_and_equals_the_run(app_with, manual_clock):  # noqa: F811
    from datetime import timedelta

    app, api = capped_app(app_with, 2, "month")
    rule = {"tags": {"any_of": ["m"]}}
    create_sop(api, "log", {"kind": "nurture", "target": {"rule": rule}, "steps": steps("log", range(1, 3))})
    create_sop(
        api, "cap", {"kind": "nurture", "target": {"rule": rule}, "steps": steps("capped", range(20, 25))}
    )
    customers = [add_customer(api, f"wm-{i}", tags=["m"]) for i in range(3)]
    run_to(app, manual_clock, manual_clock.now())
    body = api.get("/api/v1/forecast?days=90&touches=true").json()
    until = manual_clock.now() + timedelta(days=90)
    run_to(app, manual_clock, until)
    actual = sorted(
        (t.customer_id, t.sop_id, t.step_index, t.sent_at.isoformat())
        for c in customers
        for t in touches(app, customer_id=c)
        if t.sent_at is not None
    )
    predicted = sorted(
        (t["customer_id"], t["sop_id"], t["step_index"], t["sends_at"]) for t in body["touches"]
    )
    assert predicted == actual and len(actual) == 21
    reasons = {r for row in body["calendar"] for r in row["deferred"]}
    assert "customer_month_cap" in reasons

"""The send calendar forecast as the API answers it (docs/forecast.md)."""

from __future__ import annotations

import msgspec

from sopflow.api.responses import Instant, Out


class ForecastTotals(Out):
    planned: int
    sent: int
    deferrals: int
    skipped: int
    slipping: int


class ForecastDay(Out):
    """One day's touches of one SOP step (per channel, touchpoint and staff member)."""

    day: str
    sop_id: int
    step_index: int
    channel: str | None
    touchpoint: str | None
    staff: str | None
    planned: int
    sent: int
    #: reason → count
    deferred: dict[str, int]
    skipped: dict[str, int]


class ForecastQuota(Out):
    day: str
    channel: str
    counted_pushes: int


class SlippingTouch(Out):
    """A touch that sends more than a day late, or not within the horizon (``sends_at`` null)."""

    customer_id: int
    sop_id: int
    step_index: int
    planned_at: Instant
    sends_at: Instant | None


class ForecastTouch(Out):
    touch_id: int | None
    customer_id: int
    sop_id: int
    step_index: int
    sends_at: Instant


class ForecastOut(Out):
    from_: Instant = msgspec.field(name="from")
    until: Instant = msgspec.field()
    days: int = msgspec.field()
    timezone: str = msgspec.field()
    totals: ForecastTotals = msgspec.field()
    calendar: list[ForecastDay] = msgspec.field()
    quota: list[ForecastQuota] = msgspec.field()
    slipping: list[SlippingTouch] = msgspec.field()
    #: with ``touches=true``: each touch that goes out
    touches: list[ForecastTouch] | msgspec.UnsetType = msgspec.UNSET
    #: one SOP's forecast: which, and whether it was run as if started now
    sop_id: int | msgspec.UnsetType = msgspec.UNSET
    as_if_started_now: bool | msgspec.UnsetType = msgspec.UNSET

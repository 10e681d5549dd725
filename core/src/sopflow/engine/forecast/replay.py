"""The forecast's replay: the scheduler's claim and the delivery's reply gate run
forward in memory over the tenant's open touches, with the engine's own
functions — due times (``schedule``), quiet hours, the caps a step is under
(``claim.step_daily_cap``, ``period_caps``), when a capped touch is due again
(``claim.cap_retry_at``), batch windows (``claim.window_start``) — and the
ledgers read from the database at the start.  Nothing is written.

What it assumes, as the docs say: no data changes over the horizon (no new
customers, no replies, no conversions, no early-end rule turning true, no
flows into other SOPs) and channels that accept every send at once (no rate
limit, no staff confirmation, no failures; a staff reminder for a customer with
no owner is skipped, as delivery skips it).  Under those the replay is the
manual clock's run, touch for touch (tests/test_forecast.py proves it).
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sopflow.conditions import parse_duration
from sopflow.engine.delivery import period_caps as periods
from sopflow.engine.delivery.claim import (
    cap_retry_at,
    counts_for_cap,
    push_channels,
    step_daily_cap,
    window_start,
)
from sopflow.engine.delivery.sends import to_staff
from sopflow.engine.sops.arms import first_of_its_arm
from sopflow.engine.sops.schedule import local_day, outside_quiet_hours

#: the claim's round size (``dispatch_due``'s default)
CLAIM_ROUND = 500


@dataclass
class SimTouch:
    """One touch as the replay moves it: the columns the claim and the gate read."""

    id: int
    sop_id: int
    enrollment_id: int
    customer_id: int
    step_index: int
    planned_at: datetime
    due_at: datetime
    status: str = "scheduled"
    cap_day: str | None = None
    sent_at: datetime | None = None


@dataclass
class SimEnrollment:
    """An active enrolment: its zone and its version's definition (shared, read only)."""

    id: int
    timezone: str
    definition: dict[str, Any]
    active: bool = True


@dataclass
class Event:
    """What happened to a touch at ``at``: ``sent``, ``deferred`` (with the rule)
    or ``skipped`` / ``cancelled`` (with why)."""

    touch: SimTouch
    at: datetime
    kind: str
    reason: str | None = None
    until: datetime | None = None


@dataclass
class Ledgers:
    """The caps' ledgers as the database holds them now, then moved by the replay."""

    daily: dict[tuple[int, date], int] = field(default_factory=dict)
    windows: dict[tuple[int, datetime], int] = field(default_factory=dict)

    def period_used(self, customer_id: int, day: date, period: str) -> int:
        """Counted pushes of the customer in the week or month holding ``day``."""
        start, end = periods.period_start(day, period), periods.next_period_start(day, period)
        return sum(n for (c, d), n in self.daily.items() if c == customer_id and start <= d < end)


@dataclass
class Rules:
    """The caps in force: the tenant's daily cap and what channels declare."""

    tenant_cap: int
    channel_caps: Mapping[str, int]
    period_caps: Mapping[str, Mapping[str, int]]
    deliver_batch: int = 50
    #: customers with no owner: a staff reminder to them is skipped, its slot given back
    no_owner: frozenset[int] = frozenset()


def replay(
    touches: Iterable[SimTouch],
    enrollments: Mapping[int, SimEnrollment],
    ledgers: Ledgers,
    rules: Rules,
    now: datetime,
    until: datetime,
    sent_before: Mapping[tuple[int, int], datetime],
    on_event: Callable[[Event], None],
) -> None:
    """Move the clock from due time to due time up to ``until``, as the scheduler
    does, and report each touch's fate through ``on_event``.  ``sent_before``:
    (enrolment id, step index) → when an earlier step was sent (the reply gate)."""
    by_id = {t.id: t for t in touches}
    sent = dict(sent_before)
    heap = [(t.due_at, t.id) for t in by_id.values() if t.status == "scheduled"]
    heapq.heapify(heap)
    clock = now
    while heap:
        due, touch_id = heap[0]
        if due > until:
            break
        clock = max(clock, due)
        while heap and heap[0][0] <= clock:  # the rounds of one tick: claim, then deliver
            batch: list[SimTouch] = []
            while heap and heap[0][0] <= clock and len(batch) < CLAIM_ROUND:
                due, touch_id = heapq.heappop(heap)
                touch = by_id[touch_id]
                if touch.status == "scheduled" and touch.due_at == due:  # else a stale entry
                    batch.append(touch)
            claimed = _claim(batch, enrollments, ledgers, rules, clock, on_event)
            for start in range(0, len(claimed), rules.deliver_batch):
                chunk = sorted(claimed[start : start + rules.deliver_batch], key=lambda t: t.id)
                _deliver(chunk, enrollments, ledgers, rules, sent, clock, on_event)
            for touch in batch:
                if touch.status == "scheduled":
                    heapq.heappush(heap, (touch.due_at, touch.id))


def _defer(
    touch: SimTouch, until: datetime, reason: str, now: datetime, on_event: Callable[[Event], None]
) -> None:
    touch.due_at = until
    on_event(Event(touch, now, "deferred", reason, until))


def _claim(
    batch: list[SimTouch],
    enrollments: Mapping[int, SimEnrollment],
    ledgers: Ledgers,
    rules: Rules,
    now: datetime,
    on_event: Callable[[Event], None],
) -> list[SimTouch]:
    """``claim._claim`` for one round, in its order: a cancelled enrolment, quiet
    hours, the daily cap, the weekly and monthly caps, the batch window.

    Long because it mirrors ``claim._claim`` check for check, in the same order,
    so the two can be read side by side."""
    claimed: list[SimTouch] = []
    facts: dict[int, tuple[bool, int, dict[str, int]]] = {}  # per step: counted, daily cap, period caps
    for touch in sorted(batch, key=lambda t: (t.due_at, t.id)):
        enrollment = enrollments[touch.enrollment_id]
        if not enrollment.active:
            touch.status = "cancelled"
            on_event(Event(touch, now, "cancelled", "enrolment_ended"))
            continue
        definition = enrollment.definition
        tz = ZoneInfo(enrollment.timezone)
        quiet_until = outside_quiet_hours(now, definition.get("quiet_hours"), tz)
        if quiet_until > now:
            _defer(touch, quiet_until, "quiet_hours", now, on_event)
            continue
        step = definition["steps"][touch.step_index]
        if id(step) not in facts:
            facts[id(step)] = (
                counts_for_cap(step),
                step_daily_cap(rules.tenant_cap, step, rules.channel_caps),
                periods.caps_of_step(push_channels(step), rules.period_caps),
            )
        counted, daily_cap, period_caps = facts[id(step)]
        day = local_day(now, enrollment.timezone)
        needs_slot = counted and touch.cap_day != day.isoformat()
        if needs_slot:
            key = (touch.customer_id, day)
            if ledgers.daily.get(key, 0) >= daily_cap:
                _defer(touch, cap_retry_at(touch.planned_at, day, tz, now), "customer_cap", now, on_event)
                continue
            ledgers.daily[key] = ledgers.daily.get(key, 0) + 1
            touch.cap_day = day.isoformat()
            refused = None
            for period, cap in period_caps.items():
                if ledgers.period_used(touch.customer_id, day, period) > cap:
                    refused = period
                    break
            if refused:
                ledgers.daily[key] -= 1
                touch.cap_day = None
                until = cap_retry_at(touch.planned_at, day, tz, now, refused)
                _defer(touch, until, f"customer_{refused}_cap", now, on_event)
                continue
        batch_rule = definition.get("batch")
        if batch_rule:
            interval = parse_duration(batch_rule["interval"])
            window = window_start(now, interval)
            wkey = (touch.sop_id, window)
            if ledgers.windows.get(wkey, 0) >= batch_rule["size"]:
                if counted and touch.cap_day == day.isoformat():
                    ledgers.daily[(touch.customer_id, day)] -= 1
                    touch.cap_day = None
                _defer(touch, window + interval, "batch", now, on_event)
                continue
            ledgers.windows[wkey] = ledgers.windows.get(wkey, 0) + 1
        touch.status = "claimed"
        claimed.append(touch)
    return claimed


def _deliver(
    chunk: list[SimTouch],
    enrollments: Mapping[int, SimEnrollment],
    ledgers: Ledgers,
    rules: Rules,
    sent: dict[tuple[int, int], datetime],
    now: datetime,
    on_event: Callable[[Event], None],
) -> None:
    """Delivery's decisions before the call (the reply gate; every send then
    succeeds), each against what was sent before this chunk, as ``deliver``'s
    prepare transaction reads it; then completion of finished enrolments."""
    gone_out: list[SimTouch] = []
    for touch in chunk:
        definition = enrollments[touch.enrollment_id].definition
        wait = None
        if not first_of_its_arm(definition, touch.step_index):
            wait = definition["steps"][touch.step_index - 1].get("wait_for_reply")
        previous = sent.get((touch.enrollment_id, touch.step_index - 1)) if wait else None
        if wait and previous is not None:
            deadline = previous + parse_duration(wait["timeout"])
            if now < deadline:  # no replies over the horizon: it waits for the timeout
                touch.status = "scheduled"
                _defer(touch, deadline, "waiting_for_reply", now, on_event)
                continue
            if wait["on_timeout"] == "skip":
                touch.status = "skipped"
                on_event(Event(touch, now, "skipped", "no_reply"))
                continue
        step = definition["steps"][touch.step_index]
        if touch.customer_id in rules.no_owner and any(to_staff(a) for a in step["actions"]):
            touch.status = "skipped"  # nobody to tell (``sends.build_sends``): the slot goes back
            if touch.cap_day:
                ledgers.daily[(touch.customer_id, date.fromisoformat(touch.cap_day))] -= 1
            on_event(Event(touch, now, "skipped", "no_owner"))
            continue
        gone_out.append(touch)
    for touch in gone_out:
        touch.status, touch.sent_at = "sent", now
        sent[(touch.enrollment_id, touch.step_index)] = now
        on_event(Event(touch, now, "sent"))


def horizon(now: datetime, days: int) -> datetime:
    """The end of a forecast of ``days`` days from ``now``."""
    return now + timedelta(days=days)

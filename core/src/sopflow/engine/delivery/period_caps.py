"""The weekly and monthly per-customer caps a channel declares
(``CustomerCap(count, "week" | "month")``).

They work like the daily cap: a counted push (``claim.counts_for_cap``) on a
step of such a channel goes out only while the customer's counted pushes in
the period, on any channel, stay within the cap (counted from the daily ledger,
after the touch took its daily slot); otherwise the daily slot is given back and
the touch is deferred to the first day of the next period at its planned local
time — never dropped.
A week is ISO (Monday to Sunday), a month the calendar month, both in the
enrolment's time zone like the daily cap.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from sopflow.models import SendQuota

_Q = SendQuota.__table__

#: the periods longer than a day, in the order they are checked
PERIODS: tuple[str, ...] = ("week", "month")


def period_start(day: date, period: str) -> date:
    """The first local day of the ``period`` (``week``: Monday; ``month``: the 1st) holding ``day``."""
    if period == "week":
        return day - timedelta(days=day.weekday())
    if period == "month":
        return day.replace(day=1)
    raise ValueError(f"period={period!r}: use one of {PERIODS}")


def next_period_start(day: date, period: str) -> date:
    """The first local day of the period after the one holding ``day``."""
    start = period_start(day, period)
    if period == "week":
        return start + timedelta(days=7)
    return (start + timedelta(days=32)).replace(day=1)


def period_channel_caps(registry: Any) -> dict[str, dict[str, int]]:
    """Channel name → {period: count} for the channels that declare a weekly or
    monthly ``customer_cap`` (a daily one is ``claim.daily_channel_caps``')."""
    out: dict[str, dict[str, int]] = {}
    for reg in registry.all("register_channels"):
        cap = reg.spec.capabilities.customer_cap
        if cap is not None and cap.period in PERIODS:
            out[reg.spec.name] = {cap.period: cap.count}
    return out


def caps_of_step(channels: set[str], caps: Mapping[str, Mapping[str, int]] | None) -> dict[str, int]:
    """The period caps that hold for a step on ``channels``: per period the lowest declared."""
    out: dict[str, int] = {}
    for channel in sorted(channels):
        for period, count in (caps or {}).get(channel, {}).items():
            out[period] = min(count, out.get(period, count))
    return {p: out[p] for p in PERIODS if p in out}


def over_period_cap(session: Session, customer_id: int, day: date, caps: Mapping[str, int]) -> str | None:
    """The first period whose cap the customer's counted pushes exceed, counting
    the slot the touch just took on ``day`` in the daily ledger; else ``None``.

    Read from the daily ledger (``send_quotas``), which counts every counted push
    on any channel; the conditional upsert that took today's slot holds that row's
    lock until commit, so a second scheduler's claim for the customer waits for
    this one and then reads its slot: the cap holds across schedulers."""
    for period, cap in caps.items():
        start, end = period_start(day, period), next_period_start(day, period)
        used = session.scalar(
            sa.select(sa.func.coalesce(sa.func.sum(_Q.c.used), 0)).where(
                _Q.c.customer_id == customer_id, _Q.c.day >= start, _Q.c.day < end
            )
        )
        if int(used or 0) > cap:
            return period
    return None

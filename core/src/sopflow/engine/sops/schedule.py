"""Absolute due times for an enrolment's steps.

"Day N at HH:MM" is computed in the customer's time zone (else the tenant's)
and stored in UTC, so a touch goes out at 09:00 local on both sides of a DST
change.  Day 0 is the enrolment day.  A delay step counts from the step before
it (the first from the enrolment).
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sopflow.conditions import parse_duration
from sopflow.engine.sops.arms import arm_range


def local_at(day: date, hhmm: str, tz: ZoneInfo) -> datetime:
    """The UTC instant of wall time ``hhmm`` on local ``day`` in ``tz``."""
    hour, minute = (int(x) for x in hhmm.split(":"))
    # fold=0 picks the first of two repeated wall times; a wall time inside a
    # spring-forward gap resolves to the instant after the gap.
    local = datetime.combine(day, time(hour, minute), tzinfo=tz)
    return local.astimezone(UTC)


def planned_times(definition: dict[str, Any], enrolled_at: datetime, tz_name: str) -> list[datetime | None]:
    """Due time per step; ``None`` for a step skipped by the catch-up policy."""
    tz = ZoneInfo(tz_name)
    start_day = enrolled_at.astimezone(tz).date()
    out: list[datetime | None] = []
    previous = enrolled_at
    for step in definition["steps"]:
        if step.get("delay"):
            due: datetime | None = previous + parse_duration(step["delay"])
        else:
            due = local_at(start_day + timedelta(days=step["day"]), step["at"], tz)
            if due < enrolled_at:
                policy = definition.get("catch_up", "send_now")
                if policy == "send_now":
                    due = enrolled_at
                elif policy == "next_day":
                    due = local_at(enrolled_at.astimezone(tz).date() + timedelta(days=1), step["at"], tz)
                else:
                    due = None
        if due is not None:
            due = outside_quiet_hours(due, definition.get("quiet_hours"), tz)
            previous = due
        out.append(due)
    return out


def arm_planned_times(
    definition: dict[str, Any], arm: str | None, enrolled_at: datetime, tz_name: str
) -> list[tuple[int, datetime | None]]:
    """(step index, due time) for the steps of ``arm`` (every step without a
    split): the arm's steps are scheduled as an SOP of their own."""
    indexes = arm_range(definition, arm)
    steps = definition["steps"][indexes.start : indexes.stop]
    due = planned_times({**definition, "steps": steps}, enrolled_at, tz_name)
    return list(zip(indexes, due, strict=True))


def outside_quiet_hours(when: datetime, quiet: dict[str, str] | None, tz: ZoneInfo) -> datetime:
    """Move ``when`` to the end of the quiet window it falls in, if any."""
    if not quiet:
        return when
    local = when.astimezone(tz)
    start = time.fromisoformat(quiet["start"])
    end = time.fromisoformat(quiet["end"])
    t = local.time()
    if start == end:
        return when
    if start < end:
        inside = start <= t < end
        end_day = local.date()
    else:  # the window crosses midnight, e.g. 22:00–08:00
        inside = t >= start or t < end
        end_day = local.date() + timedelta(days=1) if t >= start else local.date()
    if not inside:
        return when
    return local_at(end_day, quiet["end"], tz)


def local_day(when: datetime, tz_name: str) -> date:
    """The local date of ``when`` in time zone ``tz_name``."""
    return when.astimezone(ZoneInfo(tz_name)).date()


def next_local_day_same_time(when: datetime, tz_name: str) -> datetime:
    """The same local wall time on the next local day (DST-safe: not ``+24h``)."""
    tz = ZoneInfo(tz_name)
    local = when.astimezone(tz)
    return local_at(local.date() + timedelta(days=1), local.strftime("%H:%M"), tz)

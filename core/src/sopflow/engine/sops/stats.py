"""The data page: totals per SOP and per step, conversion within N days,
computed with grouped SQL over touches and enrolments, and sends and
conversions per day for its chart."""

from __future__ import annotations

from datetime import datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.orm import Session

from sopflow.engine.sops.enrolment import tenant_timezone
from sopflow.engine.sops.manage import current_definition
from sopflow.engine.sops.split_stats import compare_groups, group_counts
from sopflow.errors import InvalidInput
from sopflow.models import Enrollment, Sop, Touch
from sopflow.models.touch_status import OPEN, TouchStatus

ON_TIME = timedelta(minutes=5)
STATUSES = tuple(TouchStatus)


def sop_stats(session: Session, sop: Sop) -> dict[str, Any]:
    """The SOP's data page: enrolments by status, conversions (within the goal
    window) and, per step, its touches by state with reply and on-time rates."""
    enrol = dict(
        session.execute(
            sa.select(Enrollment.status, sa.func.count())
            .where(Enrollment.sop_id == sop.id)
            .group_by(Enrollment.status)
        ).all()
    )
    targeted = sum(enrol.values())
    converted = (
        session.scalar(
            sa.select(sa.func.count())
            .select_from(Enrollment)
            .where(Enrollment.sop_id == sop.id, Enrollment.converted_at.is_not(None))
        )
        or 0
    )
    definition = current_definition(session, sop)
    return {
        "sop_id": sop.id,
        "targeted": targeted,
        "active": enrol.get("active", 0),
        "completed": enrol.get("completed", 0),
        "ended_early": enrol.get("ended_early", 0),
        "ended_manual": enrol.get("ended_manual", 0),
        "stopped": enrol.get("stopped", 0),
        "converted": converted,
        "conversion_rate": round(converted / targeted, 4) if targeted else None,
        "goal_window_days": definition.get("goal_window_days"),
        "steps": _step_stats(session, sop.id, len(definition["steps"])),
        "arms": arm_stats(session, sop, definition) if definition.get("arms") else None,
    }


def arm_stats(session: Session, sop: Sop, definition: dict[str, Any]) -> list[dict[str, Any]]:
    """A random split's arms (the current version's, in order, then any older
    arm with enrolments), compared as ``split_stats`` does: the first arm is the
    baseline; conversions count within the goal window."""
    window = definition.get("goal_window_days") or 7
    counts = group_counts(session, Enrollment.sop_id == sop.id, Enrollment.arm, window)
    weights = {a["name"]: a["weight"] for a in definition["arms"]}
    names = [*weights, *sorted(k for k in counts if k is not None and k not in weights)]
    empty = {"enrolled": 0, "sent": 0, "replied": 0, "converted": 0}
    groups = [({"arm": n, "weight": weights.get(n)}, counts.get(n, empty)) for n in names]
    return compare_groups(groups)


def sop_comparison(session: Session, sops: list[Sop], window_days: int | None) -> dict[str, Any]:
    """Two or more SOPs (say one per staff group) compared like a split's arms:
    the first is the baseline; conversions count within ``window_days`` (else
    the first SOP's goal window)."""
    definitions = [current_definition(session, sop) for sop in sops]
    window = window_days or definitions[0].get("goal_window_days") or 7
    counts = group_counts(session, Enrollment.sop_id.in_([s.id for s in sops]), Enrollment.sop_id, window)
    empty = {"enrolled": 0, "sent": 0, "replied": 0, "converted": 0}
    groups = [
        ({"sop_id": sop.id, "name": sop.name, "staff": d["target"]["staff"]}, counts.get(sop.id, empty))
        for sop, d in zip(sops, definitions, strict=True)
    ]
    return {"window_days": window, "groups": compare_groups(groups)}


def _step_stats(session: Session, sop_id: int, step_count: int) -> list[dict[str, Any]]:
    """Per step (every step of the current version, and any older step with touches)."""
    steps: dict[int, dict[str, Any]] = {}
    rows = session.execute(
        sa.select(Touch.step_index, Touch.status, sa.func.count())
        .where(Touch.sop_id == sop_id)
        .group_by(Touch.step_index, Touch.status)
    ).all()
    for step_index, status, n in rows:
        steps.setdefault(step_index, {s: 0 for s in STATUSES})[status] = n
    extra = session.execute(
        sa.select(
            Touch.step_index,
            sa.func.count().filter(Touch.deferrals > 0),
            sa.func.count().filter(Touch.replied_at.is_not(None)),
            sa.func.count().filter(Touch.sent_at.is_not(None)),
        )
        .where(Touch.sop_id == sop_id)
        .group_by(Touch.step_index)
    ).all()
    on_time = _on_time(session, sop_id)
    out_steps = []
    for index in sorted(set(steps) | set(range(step_count))):
        counts = steps.get(index, {s: 0 for s in STATUSES})
        deferred = replied = delivered = 0
        for step_index, d, r, sent in extra:
            if step_index == index:
                deferred, replied, delivered = d, r, sent
        total = sum(counts.values())
        out_steps.append(
            {
                "step_index": index,
                "targeted": total,
                "scheduled": sum(counts[s] for s in OPEN),
                "sent": counts[TouchStatus.SENT],
                "awaiting_confirmation": counts[TouchStatus.PENDING],
                "failed": counts[TouchStatus.FAILED],
                "skipped": counts[TouchStatus.SKIPPED],
                "cancelled": counts[TouchStatus.CANCELLED],
                "review": counts[TouchStatus.REVIEW],
                "deferred": deferred,
                "replied": replied,
                "reply_rate": round(replied / delivered, 4) if delivered else None,
                "on_time_rate": round(on_time.get(index, 0) / delivered, 4) if delivered else None,
            }
        )
    return out_steps


def _on_time(session: Session, sop_id: int) -> dict[int, int]:
    """Sent within five minutes of the planned time (deferrals count as late)."""
    rows = session.execute(
        sa.select(Touch.step_index, Touch.planned_at, Touch.sent_at).where(
            Touch.sop_id == sop_id, Touch.sent_at.is_not(None)
        )
    )
    out: dict[int, int] = {}
    for index, planned, sent in rows:
        if sent - planned <= ON_TIME:
            out[index] = out.get(index, 0) + 1
    return out


MAX_DAYS = 366


def daily_activity(session: Session, sop: Sop, now: datetime, days: int = 14) -> list[dict[str, Any]]:
    """Sends and conversions per local day (the tenant's zone) over the last
    ``days`` days, oldest first: the data page's chart."""
    if not 1 <= days <= MAX_DAYS:
        raise InvalidInput([("days", f"use 1 to {MAX_DAYS}")])
    tz = ZoneInfo(tenant_timezone(session, sop.tenant_id))
    today = now.astimezone(tz).date()
    first = today - timedelta(days=days - 1)
    since = datetime.combine(first, time(0), tzinfo=tz)
    series = {first + timedelta(days=i): {"sent": 0, "converted": 0} for i in range(days)}
    for key, query in (
        ("sent", sa.select(Touch.sent_at).where(Touch.sop_id == sop.id, Touch.sent_at >= since)),
        (
            "converted",
            sa.select(Enrollment.converted_at).where(
                Enrollment.sop_id == sop.id, Enrollment.converted_at >= since
            ),
        ),
    ):
        for (at,) in session.execute(query):
            day = at.astimezone(tz).date()
            if day in series:
                series[day][key] += 1
    return [{"day": d.isoformat(), **counts} for d, counts in series.items()]

"""Claim due touches in batches with leases, applying batch sending (F18) and
the per-customer daily cap (F27).  A touch that a cap blocks is deferred to
its next allowed slot and counted as deferred — never dropped.

Postgres claims with ``FOR UPDATE SKIP LOCKED`` so several schedulers share
the work; SQLite's ``BEGIN IMMEDIATE`` already serialises writers.  The two
ledgers are updated with a conditional upsert, so caps hold across schedulers.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from sopflow.conditions import parse_duration
from sopflow.engine.schedule import local_at, local_day, outside_quiet_hours
from sopflow.models import BatchWindow, Enrollment, SendQuota, SopVersion, Tenant, Touch

LEASE = timedelta(minutes=5)
DEFAULT_DAILY_CAP = 1


def take_slot(session: Session, table: Any, keys: dict[str, Any], extra: dict[str, Any], cap: int) -> bool:
    """Atomically use one of ``cap`` slots in a ledger row; False when full."""
    stmt = _slot_statement(session.bind.dialect.name, table, tuple(keys), tuple(extra))
    return session.execute(stmt, {**keys, **extra, "cap": cap}).first() is not None


@functools.lru_cache(maxsize=16)
def _slot_statement(dialect: str, table: Any, keys: tuple[str, ...], extra: tuple[str, ...]) -> Any:
    """Built once per ledger: building the upsert cost more than running it."""
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    stmt = insert(table).values({**{k: sa.bindparam(k) for k in (*keys, *extra)}, "used": 1})
    return stmt.on_conflict_do_update(
        index_elements=list(keys),
        set_={"used": table.c.used + 1},
        where=table.c.used < sa.bindparam("cap"),
    ).returning(table.c.used)


def give_back(session: Session, table: Any, keys: dict[str, Any]) -> None:
    session.execute(
        sa.update(table).where(*(table.c[k] == v for k, v in keys.items())).values(used=table.c.used - 1)
    )


def counts_for_cap(step: dict[str, Any]) -> bool:
    """Private-chat sends are enterprise pushes to one customer, and so is a staff
    reminder meant to be forwarded to the customer (F13)."""
    return any(
        (a.get("type") == "send" and a.get("touchpoint") == "private_chat")
        or (a.get("type") == "remind_staff" and a.get("forward"))
        for a in step["actions"]
    )


def claim_due_touches(
    session: Session,
    now: datetime,
    limit: int = 500,
    lease: timedelta = LEASE,
    max_in_flight: int | None = None,
    channel_caps: Mapping[str, int] | None = None,
) -> list[int]:
    """Claim up to ``limit`` due touches; returns the ids to deliver.

    With ``max_in_flight`` the claim stops when that many touches are already
    out with workers, so a slow channel cannot make leases expire in the queue.
    ``channel_caps`` are the daily per-customer caps channels declare (WeCom: 1);
    a step on such a channel uses the lower of it and the tenant's cap."""
    if max_in_flight is not None:
        in_flight = (
            session.scalar(
                sa.select(sa.func.count())
                .select_from(Touch)
                .where(Touch.status.in_(("claimed", "sending")), Touch.lease_until >= now)
            )
            or 0
        )
        limit = min(limit, max_in_flight - in_flight)
        if limit <= 0:
            return []
    # Two queries, not one with OR: SQLite answered the OR with a scan of the whole
    # table (every pending touch, every tick); each half uses (status, due_at).
    touches: list[Touch] = []
    for where in (
        (Touch.status == "scheduled", Touch.due_at <= now),
        (Touch.status.in_(("claimed", "sending")), Touch.lease_until < now),  # abandoned by a worker
    ):
        query = sa.select(Touch).where(*where).order_by(Touch.due_at, Touch.id).limit(limit)
        if session.bind.dialect.name == "postgresql":
            query = query.with_for_update(skip_locked=True)
        touches += session.scalars(query)
    touches = sorted(touches, key=lambda t: (t.due_at, t.id))[:limit]
    # one query each for the batch's enrolments and SOP versions, not one per touch
    enrollments = {
        e.id: e
        for e in session.scalars(
            sa.select(Enrollment).where(Enrollment.id.in_({t.enrollment_id for t in touches}))
        )
    }
    versions: dict[int, dict[str, Any]] = {
        version_id: definition
        for version_id, definition in session.execute(
            sa.select(SopVersion.id, SopVersion.definition).where(
                SopVersion.id.in_({e.sop_version_id for e in enrollments.values()})
            )
        )
    }
    # The ledger upserts below do not read the touches: flushing each touch's change
    # before every upsert (autoflush) cost more than the upserts; one flush at the end.
    with session.no_autoflush:
        claimed = _claim(session, touches, enrollments, versions, now, lease, channel_caps)
    session.flush()
    return claimed


def _claim(
    session: Session,
    touches: list[Touch],
    enrollments: dict[int, Enrollment],
    versions: dict[int, dict[str, Any]],
    now: datetime,
    lease: timedelta,
    channel_caps: Mapping[str, int] | None,
) -> list[int]:
    claimed: list[int] = []
    caps: dict[int, int] = {}

    def cap_for(touch: Touch, step: dict[str, Any]) -> int:
        if touch.tenant_id not in caps:
            caps[touch.tenant_id] = _daily_cap(session, touch.tenant_id)
        cap = caps[touch.tenant_id]
        return min([cap, *((channel_caps or {}).get(ch, cap) for ch in _push_channels(step))])

    for touch in touches:
        if touch.status == "sending" and not touch.outcome.get("idempotent"):
            # the worker died mid-send: the channel may have delivered it; a human decides
            touch.status = "review"
            touch.outcome = {**touch.outcome, "reason": "ambiguous: worker stopped during send"}
            continue
        enrollment = enrollments[touch.enrollment_id]
        if enrollment.status != "active":
            touch.status = "cancelled"
            continue
        definition = versions[enrollment.sop_version_id]
        step = definition["steps"][touch.step_index]
        tz = ZoneInfo(enrollment.timezone)
        if touch.status == "scheduled":
            quiet_until = outside_quiet_hours(now, definition.get("quiet_hours"), tz)
            if quiet_until > now:
                defer(touch, quiet_until, "quiet_hours")
                continue
            day = local_day(now, enrollment.timezone)
            # A retry (or a rate-limit wait) on the same local day already holds its slot.
            holds_slot = touch.outcome.get("cap_day") == day.isoformat()
            if counts_for_cap(step) and not holds_slot:
                if not take_slot(
                    session,
                    SendQuota.__table__,
                    {"customer_id": touch.customer_id, "day": day},
                    {"tenant_id": touch.tenant_id},
                    cap_for(touch, step),
                ):
                    planned_local = touch.planned_at.astimezone(tz).strftime("%H:%M")
                    defer(
                        touch, max(local_at(day + timedelta(days=1), planned_local, tz), now), "customer_cap"
                    )
                    continue
                touch.outcome = {**touch.outcome, "cap_day": day.isoformat()}
            batch = definition.get("batch")
            if batch:
                interval = parse_duration(batch["interval"])
                window = _window_start(now, interval)
                if not take_slot(
                    session,
                    BatchWindow.__table__,
                    {"sop_id": touch.sop_id, "window_start": window},
                    {},
                    batch["size"],
                ):
                    if counts_for_cap(step):
                        give_back(
                            session,
                            SendQuota.__table__,
                            {"customer_id": touch.customer_id, "day": local_day(now, enrollment.timezone)},
                        )
                    defer(touch, window + interval, "batch")
                    continue
        touch.status = "claimed"
        touch.lease_until = now + lease
        touch.attempts += 1
        claimed.append(touch.id)
    return claimed


def _push_channels(step: dict[str, Any]) -> set[str]:
    return {a["channel"] for a in step["actions"] if a.get("channel")}


def daily_channel_caps(registry: Any) -> dict[str, int]:
    """Channel name → the per-customer daily cap its class declares (``customer_cap``
    with ``period`` day; a weekly or monthly cap is at least as strict per day only
    when its count is 1, so those count as 1 a day then)."""
    out: dict[str, int] = {}
    for reg in registry.all("register_channels"):
        cap = getattr(getattr(reg.spec.factory, "capabilities", None), "customer_cap", None)
        if cap is not None and (cap.period == "day" or cap.count == 1):
            out[reg.spec.name] = cap.count
    return out


def defer(touch: Touch, until: datetime, reason: str) -> None:
    touch.status = "scheduled"
    touch.due_at = until
    touch.deferrals += 1
    touch.defer_reason = reason


def _daily_cap(session: Session, tenant_id: int) -> int:
    tenant = session.get(Tenant, tenant_id)
    value = (tenant.settings or {}).get("customer_daily_push_cap") if tenant else None
    return int(value) if value else DEFAULT_DAILY_CAP


def _window_start(now: datetime, interval: timedelta) -> datetime:
    seconds = int(interval.total_seconds())
    epoch = int(now.timestamp())
    return datetime.fromtimestamp(epoch - epoch % seconds, tz=UTC)

"""Claim due touches in batches with leases, applying batch sending and
the per-customer daily cap.  A touch that a cap blocks is deferred to
its next allowed slot and counted as deferred — never dropped.

Postgres claims with ``FOR UPDATE SKIP LOCKED`` so several schedulers share
the work; SQLite's ``BEGIN IMMEDIATE`` already serialises writers.  The two
ledgers are updated with a conditional upsert, so caps hold across schedulers.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from sopflow.conditions import parse_duration
from sopflow.engine.delivery import period_caps as periods
from sopflow.engine.delivery import touch_rows
from sopflow.engine.sops.schedule import local_at, local_day, outside_quiet_hours
from sopflow.models import BatchWindow, Enrollment, SendQuota, SopVersion, Tenant
from sopflow.models.touch_status import TouchStatus

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
    """Return one slot to the ledger row ``keys`` of ``table`` (a touch that took
    its daily-cap slot and then had to wait for a batch window)."""
    session.execute(
        sa.update(table).where(*(table.c[k] == v for k, v in keys.items())).values(used=table.c.used - 1)
    )


def counts_for_cap(step: dict[str, Any]) -> bool:
    """Private-chat sends are enterprise pushes to one customer, and so is a staff
    reminder meant to be forwarded to the customer."""
    return any(
        (a.get("type") == "send" and a.get("touchpoint") == "private_chat")
        or (a.get("type") == "remind_staff" and a.get("forward"))
        for a in step["actions"]
    )


_T = touch_rows.TOUCHES
_E = Enrollment.__table__
#: out with a worker under a lease
_LEASED = (TouchStatus.CLAIMED, TouchStatus.SENDING)


def claim_due_touches(
    session: Session,
    now: datetime,
    limit: int = 500,
    lease: timedelta = LEASE,
    max_in_flight: int | None = None,
    channel_caps: Mapping[str, int] | None = None,
    customer_id: int | None = None,
    period_caps: Mapping[str, Mapping[str, int]] | None = None,
) -> list[int]:
    """Claim up to ``limit`` due touches (with ``customer_id``: of that customer,
    not taking over abandoned ones); returns the ids to deliver.

    With ``max_in_flight`` the claim stops when that many touches are already
    out with workers, so a slow channel cannot make leases expire in the queue.
    ``channel_caps`` are the daily per-customer caps channels declare (WeCom: 1);
    a step on such a channel uses the lower of it and the tenant's cap.
    ``period_caps`` are the weekly and monthly ones (``period_caps``), checked
    once the daily slot is taken.

    The touches are rows, not ORM objects (``touch_rows``).

    Long because the claim is one transaction whose reads (the in-flight count,
    the two due queries, the batch's enrolments and versions) run in this order
    under the same locks; each is a statement used once, clearer in sequence."""
    if max_in_flight is not None:
        in_flight = (
            session.scalar(
                sa.select(sa.func.count())
                .select_from(_T)
                .where(_T.c.status.in_(_LEASED), _T.c.lease_until >= now)
            )
            or 0
        )
        limit = min(limit, max_in_flight - in_flight)
        if limit <= 0:
            return []
    # Two queries, not one with OR: SQLite answered the OR with a scan of the whole
    # table (every pending touch, every tick); each half uses (status, due_at).
    wheres = [
        (_T.c.status == TouchStatus.SCHEDULED, _T.c.due_at <= now),
        (_T.c.status.in_(_LEASED), _T.c.lease_until < now),  # abandoned by a worker
    ]
    if customer_id is not None:
        # a customer's few touches by its index: with ``status`` as a bare column SQLite
        # (no statistics) chose (status, due_at) and read every touch due in the backlog
        wheres = [
            (
                sa.func.coalesce(_T.c.status, "") == TouchStatus.SCHEDULED,
                _T.c.due_at <= now,
                _T.c.customer_id == customer_id,
            )
        ]
    touches: list[Any] = []
    for where in wheres:
        query = touch_rows.select_rows(*where).order_by(_T.c.due_at, _T.c.id).limit(limit)
        if session.bind.dialect.name == "postgresql":
            query = query.with_for_update(skip_locked=True)
        touches += session.execute(query).all()
    if not touches:
        return []
    touches = sorted(touches, key=lambda t: (t.due_at, t.id))[:limit]
    # one query each for the batch's enrolments and SOP versions, not one per touch
    enrollments = {
        e.id: e
        for e in session.execute(
            sa.select(_E.c.id, _E.c.status, _E.c.timezone, _E.c.sop_version_id).where(
                _E.c.id.in_({t.enrollment_id for t in touches})
            )
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
    changes: list[dict[str, Any]] = []
    claimed = _claim(session, touches, enrollments, versions, now, lease, channel_caps, changes, period_caps)
    touch_rows.write(session, changes)
    return claimed


def _claim(
    session: Session,
    touches: list[Any],
    enrollments: dict[int, Any],
    versions: dict[int, dict[str, Any]],
    now: datetime,
    lease: timedelta,
    channel_caps: Mapping[str, int] | None,
    changes: list[dict[str, Any]],
    period_caps: Mapping[str, Mapping[str, int]] | None = None,
) -> list[int]:
    """Decide each touch's fate; its new columns go to ``changes`` (one UPDATE for all).

    Long because a touch's fate (review, cancel, take-over, quiet hours, daily
    cap, batch window) depends on the checks before it and on the cap slots
    granted in bulk between the two loops; one place keeps that order visible."""
    claimed: list[int] = []
    caps: dict[int, int] = {}

    def cap_for(touch: Any, step: dict[str, Any]) -> int:
        if touch.tenant_id not in caps:
            caps[touch.tenant_id] = tenant_daily_cap(session, touch.tenant_id)
        return step_daily_cap(caps[touch.tenant_id], step, channel_caps)

    def claim(touch: Any, change: dict[str, Any]) -> None:
        change["status"] = TouchStatus.CLAIMED
        change["lease_until"] = now + lease
        change["started_at"] = None  # until a worker takes it (``claim_reconcile``)
        change["attempts"] = touch.attempts + 1
        claimed.append(touch.id)

    due: list[tuple[Any, dict[str, Any], dict[str, Any], dict[str, Any], ZoneInfo, date, bool]] = []
    for touch in touches:
        change = touch_rows.change_of(touch)
        changes.append(change)
        outcome = touch.outcome or {}
        if touch.status == TouchStatus.SENDING and not outcome.get("idempotent"):
            # the worker died mid-send: the channel may have delivered it; a human decides
            change["status"] = TouchStatus.REVIEW
            change["outcome"] = {**outcome, "reason": "ambiguous: worker stopped during send"}
            continue
        enrollment = enrollments[touch.enrollment_id]
        if touch_rows.cancelled_with(enrollment.status, outcome):
            change["status"] = TouchStatus.CANCELLED
            continue
        if touch.status != TouchStatus.SCHEDULED:  # taken over from a stopped worker: it passed the checks
            claim(touch, change)
            continue
        definition = versions[enrollment.sop_version_id]
        tz = ZoneInfo(enrollment.timezone)
        quiet_until = outside_quiet_hours(now, definition.get("quiet_hours"), tz)
        if quiet_until > now:
            defer(change, quiet_until, "quiet_hours")
            continue
        step = definition["steps"][touch.step_index]
        day = local_day(now, enrollment.timezone)
        # A retry (or a rate-limit wait) on the same local day already holds its slot.
        needs_slot = counts_for_cap(step) and outcome.get("cap_day") != day.isoformat()
        due.append((touch, change, definition, step, tz, day, needs_slot))

    # The daily-cap slots: one upsert per cap value for the first touch of each customer
    # and day (a round trip per touch was most of the claim on Postgres).  A customer's
    # second touch takes its slot below, in order, after the first one's fate is known.
    first: dict[tuple[int, date], tuple[int, int, int]] = {}
    for touch, _, _, step, _, day, needs_slot in due:
        if needs_slot:
            first.setdefault((touch.customer_id, day), (touch.id, touch.tenant_id, cap_for(touch, step)))
    granted = take_slots(session, first)

    for touch, change, definition, step, tz, day, needs_slot in due:
        if needs_slot:
            key = (touch.customer_id, day)
            if first[key][0] != touch.id:  # the customer's second touch today: its own upsert
                granted |= take_slots(session, {key: (touch.id, touch.tenant_id, cap_for(touch, step))})
            if touch.id not in granted:
                defer(change, cap_retry_at(touch.planned_at, day, tz, now), "customer_cap")
                continue
            change["outcome"] = {**change["outcome"], "cap_day": day.isoformat()}
            step_caps = periods.caps_of_step(push_channels(step), period_caps)
            refused = step_caps and periods.over_period_cap(session, touch.customer_id, day, step_caps)
        else:
            refused = None
        if refused:
            _give_back_day(session, touch, change, day)
            defer(change, cap_retry_at(touch.planned_at, day, tz, now, refused), f"customer_{refused}_cap")
            continue
        batch = definition.get("batch")
        if batch:
            interval = parse_duration(batch["interval"])
            window = window_start(now, interval)
            if not take_slot(
                session,
                BatchWindow.__table__,
                {"sop_id": touch.sop_id, "window_start": window},
                {},
                batch["size"],
            ):
                if counts_for_cap(step):  # the slots it took (or held) are given back
                    _give_back_day(session, touch, change, day)
                defer(change, window + interval, "batch")
                continue
        claim(touch, change)
    order = {touch.id: i for i, touch in enumerate(touches)}
    return sorted(claimed, key=order.__getitem__)


def step_daily_cap(tenant_cap: int, step: dict[str, Any], channel_caps: Mapping[str, int] | None) -> int:
    """A step's daily cap: the tenant's, or a stricter one its channels declare."""
    return min([tenant_cap, *((channel_caps or {}).get(ch, tenant_cap) for ch in push_channels(step))])


def cap_retry_at(
    planned_at: datetime, day: date, tz: ZoneInfo, now: datetime, period: str = "day"
) -> datetime:
    """When a touch a cap held back on local ``day`` is due again: the first day of
    the next day, week or month at its planned local time (never before ``now``)."""
    planned_local = planned_at.astimezone(tz).strftime("%H:%M")
    following = day + timedelta(days=1) if period == "day" else periods.next_period_start(day, period)
    return max(local_at(following, planned_local, tz), now)


def _give_back_day(session: Session, touch: Any, change: dict[str, Any], day: date) -> None:
    """Return the daily-cap slot the touch took (or held) for ``day``, if any."""
    if change["outcome"].get("cap_day") == day.isoformat():
        give_back(session, SendQuota.__table__, {"customer_id": touch.customer_id, "day": day})
        change["outcome"] = {k: v for k, v in change["outcome"].items() if k != "cap_day"}


def take_slots(session: Session, wanted: Mapping[tuple[int, date], tuple[int, int, int]]) -> set[int]:
    """Daily-cap slots for many customers at once: ``wanted`` maps (customer id, local
    day) to (touch id, tenant id, cap); returns the touch ids that got their slot.
    Rows go in key order, so two schedulers lock them in the same order."""
    if not wanted:
        return set()
    by_cap: dict[int, list[dict[str, Any]]] = {}
    for (customer_id, day), (_, tenant_id, cap) in sorted(wanted.items()):
        by_cap.setdefault(cap, []).append({"customer_id": customer_id, "day": day, "tenant_id": tenant_id})
    granted: set[int] = set()
    for cap, rows in by_cap.items():
        # executemany: SQLAlchemy sends the rows as multi-row upserts ("insertmanyvalues")
        stmt = _slots_statement(session.bind.dialect.name, cap)
        granted.update(wanted[(customer_id, day)][0] for customer_id, day in session.execute(stmt, rows))
    return granted


@functools.lru_cache(maxsize=64)
def _slots_statement(dialect: str, cap: int) -> Any:
    table = SendQuota.__table__
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    keys = ("customer_id", "day", "tenant_id")
    return (
        insert(table)
        .values({**{k: sa.bindparam(k) for k in keys}, "used": 1})
        .on_conflict_do_update(
            index_elements=["customer_id", "day"],
            set_={"used": table.c.used + 1},
            where=table.c.used < sa.literal_column(str(int(cap))),  # one statement per cap value
        )
        .returning(table.c.customer_id, table.c.day)
    )


def push_channels(step: dict[str, Any]) -> set[str]:
    """The channels a step's actions go out on."""
    return {a["channel"] for a in step["actions"] if a.get("channel")}


def daily_channel_caps(registry: Any) -> dict[str, int]:
    """Channel name → the per-customer daily cap its capabilities declare
    (``customer_cap`` with period ``day``; weekly and monthly ones are
    ``period_caps.period_channel_caps``')."""
    out: dict[str, int] = {}
    for reg in registry.all("register_channels"):
        cap = reg.spec.capabilities.customer_cap
        if cap is not None and cap.period == "day":
            out[reg.spec.name] = cap.count
    return out


def defer(change: dict[str, Any], until: datetime, reason: str) -> None:
    """A touch's columns when it waits for ``until`` (``change``: see ``_claim``)."""
    change["status"] = TouchStatus.SCHEDULED
    change["due_at"] = until
    change["deferrals"] += 1
    change["defer_reason"] = reason


def tenant_daily_cap(session: Session, tenant_id: int) -> int:
    """The tenant's ``customer_daily_push_cap`` (default 1)."""
    tenant = session.get(Tenant, tenant_id)
    value = (tenant.settings or {}).get("customer_daily_push_cap") if tenant else None
    return int(value) if value else DEFAULT_DAILY_CAP


def window_start(now: datetime, interval: timedelta) -> datetime:
    """The start of the batch window of length ``interval`` holding ``now``."""
    seconds = int(interval.total_seconds())
    epoch = int(now.timestamp())
    return datetime.fromtimestamp(epoch - epoch % seconds, tz=UTC)

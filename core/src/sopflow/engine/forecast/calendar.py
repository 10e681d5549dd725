"""The send calendar: what the tenant's started SOPs and journey reminders will
do per day over a horizon, read from today's data and replayed (``replay``)
with the engine's own schedule and cap functions.  Read only: it loads rows,
replays them in memory and writes nothing.

``sop_forecast`` is one SOP's view of the same replay (every other SOP still
competes for the customers' slots); with a definition — a draft's, or an edit
not saved yet — that SOP runs as if started now with it on today's audience.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from datetime import date, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from sopflow.conditions import resolve_timezone, snapshot_customers
from sopflow.engine.context import EngineContext
from sopflow.engine.customers.fields import field_definitions
from sopflow.engine.delivery.claim import (
    counts_for_cap,
    daily_channel_caps,
    push_channels,
    tenant_daily_cap,
)
from sopflow.engine.delivery.period_caps import period_channel_caps
from sopflow.engine.forecast.replay import Event, Ledgers, Rules, SimEnrollment, SimTouch, horizon, replay
from sopflow.engine.sops.arms import arm_names, assign_arm
from sopflow.engine.sops.enrolment import SopRuntime, staff_of, tenant_timezone
from sopflow.engine.sops.schedule import arm_planned_times, local_day
from sopflow.models import BatchWindow, Customer, Enrollment, SendQuota, Sop, SopVersion, Staff, Touch
from sopflow.models.touch_status import TouchStatus

MAX_DAYS = 90
#: the most touches (and slipping customers) listed one by one
MAX_LISTED = 10_000
SLIP = timedelta(days=1)


class Prepared:
    """A forecast's rows, loaded: ``run()`` replays them.  Call it after the
    transaction that loaded them (a read-only one), so the replay holds no
    database snapshot or lock while it runs."""

    def __init__(self, state: _State, rules: Rules, days: int, keep: Any, touches: bool) -> None:
        self.state, self.rules, self.days, self.keep, self.touches = state, rules, days, keep, touches
        self.extra: dict[str, Any] = {}

    def run(self) -> dict[str, Any]:
        """The forecast's answer (docs/forecast.md)."""
        state, until = self.state, horizon(self.state.now, self.days)
        report = _Report(state, self.keep)
        for t in state.touches:
            if self.keep(t.sop_id) and state.now <= t.planned_at < until:
                report.planned(t)
        rules, ledgers, sent_before = self.rules, state.ledgers, state.sent_before
        replay(state.touches, state.enrollments, ledgers, rules, state.now, until, sent_before, report.add)
        return {**self.extra, **report.result(state.now, until, self.days, self.touches)}


def tenant_forecast(
    session: Session, ctx: EngineContext, tenant_id: int, days: int, *, touches: bool = False
) -> Prepared:
    """``GET /api/v1/forecast``: every started SOP and journey reminder."""
    state = _load(session, ctx, tenant_id)
    return Prepared(state, _rules(session, ctx, state), days, lambda sop_id: True, touches)


def sop_forecast(
    session: Session,
    ctx: EngineContext,
    sop: Sop,
    days: int,
    definition: dict[str, Any] | None,
    *,
    touches: bool = False,
) -> Prepared:
    """``POST /api/v1/sops/{id}/forecast``: this SOP's touches, competing with the rest.
    ``definition`` (checked by the caller) or a draft SOP: enrolled now on today's audience."""
    state = _load(session, ctx, sop.tenant_id)
    if definition is not None or sop.status != "started":
        if definition is None:
            definition = session.scalar(
                sa.select(SopVersion.definition).where(
                    SopVersion.sop_id == sop.id, SopVersion.version == sop.current_version
                )
            )
        _as_if_started(session, ctx, state, sop, definition)
    this = sop.id  # read now: the SOP object is not used after the transaction
    prepared = Prepared(state, _rules(session, ctx, state), days, lambda sop_id: sop_id == this, touches)
    as_if = definition is not None or sop.status != "started"
    prepared.extra = {"sop_id": this, "as_if_started_now": as_if}
    return prepared


class _State:
    def __init__(self, tenant_id: int, tz: str, now: datetime) -> None:
        self.tenant_id, self.tz, self.now = tenant_id, tz, now
        self.touches: list[SimTouch] = []
        self.enrollments: dict[int, SimEnrollment] = {}
        self.sent_before: dict[tuple[int, int], datetime] = {}
        self.ledgers = Ledgers()
        self.staff: dict[int, str | None] = {}


def _load(session: Session, ctx: EngineContext, tenant_id: int) -> _State:
    """The tenant's open touches of active enrolments, their definitions, the
    earlier sends the reply gate reads, and the caps' ledgers."""
    now = ctx.now()
    state = _State(tenant_id, tenant_timezone(session, tenant_id), now)
    e, t = Enrollment.__table__, Touch.__table__
    active = sa.and_(e.c.tenant_id == tenant_id, e.c.status == "active")
    # each version's definition once (shared, read only), not once per enrolment
    versions = sa.select(e.c.sop_version_id).where(active).distinct().scalar_subquery()
    query = sa.select(SopVersion.id, SopVersion.definition).where(SopVersion.id.in_(versions))
    definitions = dict(session.execute(query).all())
    rows = session.execute(sa.select(e.c.id, e.c.timezone, e.c.sop_version_id).where(active))
    state.enrollments = {i: SimEnrollment(i, zone, definitions[v]) for i, zone, v in rows}
    # a touch holds a day's slot (``cap_day``) only once claimed: only those outcomes are read
    held = dict(
        session.execute(
            sa.select(t.c.id, t.c.outcome)
            .join(e, e.c.id == t.c.enrollment_id)
            .where(active, t.c.status == TouchStatus.SCHEDULED, t.c.attempts > 0)
        ).all()
    )
    for row in session.execute(
        sa.select(t.c.id, t.c.sop_id, t.c.enrollment_id, t.c.customer_id, t.c.step_index)
        .add_columns(t.c.planned_at, t.c.due_at, t.c.status, t.c.sent_at)
        .join(e, e.c.id == t.c.enrollment_id)
        .where(t.c.tenant_id == tenant_id, active)
        .order_by(t.c.id)
    ):
        if row.status == TouchStatus.SCHEDULED:
            cap_day = (held.get(row.id) or {}).get("cap_day")
            state.touches.append(
                SimTouch(*row[:5], planned_at=row.planned_at, due_at=row.due_at, cap_day=cap_day)
            )
        elif row.sent_at is not None:
            state.sent_before[(row.enrollment_id, row.step_index)] = row.sent_at
    today = local_day(now, state.tz)
    for customer_id, day, used in session.execute(
        sa.select(SendQuota.customer_id, SendQuota.day, SendQuota.used).where(
            SendQuota.tenant_id == tenant_id, SendQuota.day >= today - timedelta(days=40)
        )
    ):
        state.ledgers.daily[(customer_id, day)] = used
    sops = sa.select(Sop.id).where(Sop.tenant_id == tenant_id).scalar_subquery()
    for sop_id, start, used in session.execute(
        sa.select(BatchWindow.sop_id, BatchWindow.window_start, BatchWindow.used).where(
            BatchWindow.sop_id.in_(sops), BatchWindow.window_start >= now - timedelta(days=1)
        )
    ):
        state.ledgers.windows[(sop_id, start)] = used
    state.staff = dict(
        session.execute(
            sa.select(Customer.id, Staff.external_id)
            .outerjoin(Staff, Staff.id == Customer.owner_staff_id)
            .where(Customer.tenant_id == tenant_id)
        ).all()
    )
    return state


def _as_if_started(
    session: Session, ctx: EngineContext, state: _State, sop: Sop, definition: dict[str, Any]
) -> None:
    """Replace the SOP's open touches by an enrolment now, with ``definition``, of
    every customer its target and entry guard let in today (``SopRuntime``, as the
    engine decides; a new-customer SOP enrols on an add event, so nobody here)."""
    ids = {t.enrollment_id for t in state.touches if t.sop_id == sop.id}
    state.touches = [t for t in state.touches if t.sop_id != sop.id]
    for i in ids:
        state.enrollments.pop(i, None)
    if definition.get("kind") != "nurture":
        return
    fields = field_definitions(session, state.tenant_id, ctx.plugins)
    runtime = SopRuntime(sop, SopVersion(sop_id=sop.id, version=0, definition=definition), fields)
    query = sa.select(Customer).where(Customer.tenant_id == state.tenant_id).order_by(Customer.id)
    customers = list(session.scalars(query))
    snapshots = snapshot_customers(session, customers, state.tz)
    next_id = max([t.id for t in state.touches] + [session.scalar(sa.select(sa.func.max(Touch.id))) or 0]) + 1
    next_enrollment = -1  # not rows: negative ids keep them apart from real enrolments
    for customer in customers:
        snap = snapshots[customer.id]
        if not runtime.targets(snap, staff_of(session, customer), state.now):
            continue
        if runtime.ends_early(snap, state.now):
            continue
        tz = resolve_timezone(customer.timezone, state.tz)
        arm = assign_arm(sop.id, customer.id, definition["arms"]) if arm_names(definition) else None
        state.enrollments[next_enrollment] = SimEnrollment(next_enrollment, tz, definition)
        for index, due in arm_planned_times(definition, arm, state.now, tz):
            if due is not None:
                state.touches.append(SimTouch(next_id, sop.id, next_enrollment, customer.id, index, due, due))
            next_id += 1
        next_enrollment -= 1


def _rules(session: Session, ctx: EngineContext, state: _State) -> Rules:
    return Rules(
        tenant_daily_cap(session, state.tenant_id),
        daily_channel_caps(ctx.plugins.registry),
        period_channel_caps(ctx.plugins.registry),
        ctx.settings.deliver_batch,
        frozenset(c for c, staff in state.staff.items() if staff is None),
    )


class _Report:
    """Counts per local day (the tenant's zone) and per step, channel, touchpoint and staff member."""

    def __init__(self, state: _State, keep: Any) -> None:
        self.state, self.keep = state, keep
        self.rows: dict[tuple[Any, ...], dict[str, Any]] = {}
        self.steps: dict[tuple[int, int], tuple[str, str, bool]] = {}
        self.days: dict[int, date] = {}
        self.quota: Counter[tuple[date, str]] = Counter()
        self.sent: list[Event] = []
        self.unsent: dict[int, SimTouch] = {}

    def _step(self, touch: SimTouch) -> tuple[str, str, bool]:
        """A step's channels, touchpoints and whether it counts for the caps, once per step."""
        definition = self.state.enrollments[touch.enrollment_id].definition
        memo = (id(definition), touch.step_index)
        if memo not in self.steps:
            step = definition["steps"][touch.step_index]
            channels = ",".join(sorted(push_channels(step)))
            touchpoints = ",".join(sorted({a["touchpoint"] for a in step["actions"] if a.get("touchpoint")}))
            self.steps[memo] = (channels, touchpoints, counts_for_cap(step))
        return self.steps[memo]

    def _day(self, when: datetime) -> date:
        """The local day, once per quarter hour: zones are whole quarter hours from UTC."""
        quarter = int(when.timestamp()) // 900
        day = self.days.get(quarter)
        if day is None:
            day = self.days[quarter] = local_day(when, self.state.tz)
        return day

    def _row(self, when: datetime, touch: SimTouch) -> dict[str, Any]:
        channels, touchpoints, _ = self._step(touch)
        staff = self.state.staff.get(touch.customer_id)
        day = self._day(when)
        key = (day, touch.sop_id, touch.step_index, channels, touchpoints, staff)
        row = self.rows.get(key)
        if row is None:
            row = self.rows[key] = {
                "day": day.isoformat(),
                "sop_id": touch.sop_id,
                "step_index": touch.step_index,
                "channel": channels or None,
                "touchpoint": touchpoints or None,
                "staff": staff,
                "planned": 0,
                "sent": 0,
                "deferred": defaultdict(int),
                "skipped": defaultdict(int),
            }
        return row

    def planned(self, touch: SimTouch) -> None:
        self._row(touch.planned_at, touch)["planned"] += 1
        self.unsent[touch.id] = touch

    def add(self, event: Event) -> None:
        touch = event.touch
        if not self.keep(touch.sop_id):
            return
        self.unsent.setdefault(touch.id, touch)
        row = self._row(event.at, touch)
        if event.kind == "sent":
            row["sent"] += 1
            self.sent.append(event)
            self.unsent.pop(touch.id, None)
            channels, _, counted = self._step(touch)
            if counted:
                for channel in channels.split(",") if channels else ["-"]:
                    self.quota[(self._day(event.at), channel)] += 1
        elif event.kind == "deferred":
            row["deferred"][event.reason] += 1
        else:
            row["skipped"][event.reason] += 1
            self.unsent.pop(touch.id, None)

    def result(self, now: datetime, until: datetime, days: int, touches: bool) -> dict[str, Any]:
        slipping = [
            {
                "customer_id": e.touch.customer_id,
                "sop_id": e.touch.sop_id,
                "step_index": e.touch.step_index,
                "planned_at": e.touch.planned_at.isoformat(),
                "sends_at": e.at.isoformat(),
            }
            for e in self.sent
            if e.at - e.touch.planned_at > SLIP
        ] + [
            {
                "customer_id": t.customer_id,
                "sop_id": t.sop_id,
                "step_index": t.step_index,
                "planned_at": t.planned_at.isoformat(),
                "sends_at": None,  # not within the horizon
            }
            for t in self.unsent.values()
            if until - t.planned_at > SLIP
        ]
        calendar = [
            {**row, "deferred": dict(row["deferred"]), "skipped": dict(row["skipped"])}
            for _, row in sorted(self.rows.items(), key=lambda kv: (*kv[0][:5], kv[0][5] or ""))
        ]
        out: dict[str, Any] = {
            "from": now.isoformat(),
            "until": until.isoformat(),
            "days": days,
            "timezone": self.state.tz,
            "totals": {
                "planned": sum(r["planned"] for r in calendar),
                "sent": len(self.sent),
                "deferrals": sum(sum(r["deferred"].values()) for r in calendar),
                "skipped": sum(sum(r["skipped"].values()) for r in calendar),
                "slipping": len(slipping),
            },
            "calendar": calendar,
            "quota": [
                {"day": day.isoformat(), "channel": channel, "counted_pushes": n}
                for (day, channel), n in sorted(self.quota.items())
            ],
            "slipping": slipping[:MAX_LISTED],
        }
        if touches:
            out["touches"] = [
                {
                    "touch_id": e.touch.id if e.touch.enrollment_id > 0 else None,
                    "customer_id": e.touch.customer_id,
                    "sop_id": e.touch.sop_id,
                    "step_index": e.touch.step_index,
                    "sends_at": e.at.isoformat(),
                }
                for e in self.sent[:MAX_LISTED]
            ]
        return out

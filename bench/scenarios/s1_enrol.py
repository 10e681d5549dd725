"""S1 enrolment: enrol N customers into a started 5-touch nurture SOP (day
5/10/15/30/40 at 09:00 local, customers in 6 time zones) and materialise their
5N touches — the engine's current path, measured as it is.

Ours: ``sopflow.engine.sops.manage.compute_audience`` batch after batch, one
transaction each, as ``advance_audiences`` (engine/sops/manage.py) drives it.
Baseline: the naive in-process way on a slice, scaled — the audience's ids read
in bulk, then per customer one transaction adding the enrolment and its 5
touches through the ORM (the Dramatiq / APScheduler peers of §6 are not built).
Hardware limit: two set-based ``INSERT … SELECT`` (the enrolments, then 5 touch
rows each through a 30-row table of precomputed due times per time zone) into
scratch copies of the ``enrollments`` and ``touches`` tables with the same
columns, keys, indexes and foreign keys.
"""

from __future__ import annotations

import random
from typing import Any

import sqlalchemy as sa

from bench.load import Context, analyze, api_client, figure, insert_customers, median, ok, open_app, timed

ZONES = (
    "Asia/Shanghai",
    "America/New_York",
    "Europe/London",
    "Asia/Tokyo",
    "Australia/Sydney",
    "America/Los_Angeles",
)
DAYS = (5, 10, 15, 30, 40)
DEFINITION = {
    "kind": "nurture",
    "target": {"rule": {"tags": {"any_of": ["防晒霜"]}}},
    "steps": [
        {
            "day": d,
            "at": "09:00",
            "actions": [
                {
                    "type": "send",
                    "channel": "log",
                    "touchpoint": "private_chat",
                    "text": f"day {d}: {{{{ customer.display_name }}}}",
                }
            ],
        }
        for d in DAYS
    ],
}


NAME = "S1"
ORDER = 30
MUST_BE_ZERO = ("enrol_missing", "touch_missing", "duplicate_touches")


def add_arguments(ap: Any) -> None:
    g = ap.add_argument_group("S1 enrolment")
    g.add_argument("--s1-customers", type=int, default=20_000, help="customers enrolled (quick: 200)")
    g.add_argument("--s1-baseline", type=int, default=2_000, help="slice for the naive ORM baseline")


def people(n: int, seed: int) -> Any:
    rng = random.Random(seed)
    for i in range(n):
        yield {
            "display_name": f"客户{i}",
            "timezone": ZONES[i % len(ZONES)],
            "tags": ["防晒霜", *(["vip"] if rng.random() < 0.2 else [])],
            "fields": {},
        }


def naive(app: Any, tenant_id: int, sop_id: int, limit: int) -> tuple[float, int]:
    """The naive peer: the audience's rows loaded in bulk, then per customer one
    transaction that adds the enrolment and its 5 touches through the ORM."""
    from sopflow.engine.sops.enrolment import tenant_timezone
    from sopflow.engine.sops.schedule import planned_times
    from sopflow.models import Customer, CustomerTag, Enrollment, SopVersion, Touch

    def go() -> int:
        now = app.now()
        with app.tx() as s:
            version = s.scalar(sa.select(SopVersion).where(SopVersion.sop_id == sop_id))
            version_id, definition = version.id, version.definition
            tz = tenant_timezone(s, tenant_id)
            rows = s.execute(
                sa.select(Customer.id, Customer.timezone)
                .join(CustomerTag, CustomerTag.customer_id == Customer.id)
                .where(Customer.tenant_id == tenant_id, CustomerTag.tag == "防晒霜")
                .order_by(Customer.id)
                .limit(limit)
            ).all()
        for customer_id, zone in rows:
            with app.tx() as s:
                e = Enrollment(
                    tenant_id=tenant_id,
                    sop_id=sop_id,
                    sop_version_id=version_id,
                    customer_id=customer_id,
                    timezone=zone or tz,
                    enrolled_at=now,
                )
                s.add(e)
                s.flush()
                for k, due in enumerate(planned_times(definition, now, zone or tz)):
                    s.add(
                        Touch(
                            tenant_id=tenant_id,
                            sop_id=sop_id,
                            enrollment_id=e.id,
                            customer_id=customer_id,
                            step_index=k,
                            planned_at=due,
                            due_at=due,
                        )
                    )
        return len(rows)

    return timed(go)


def scratch_copy(src: sa.Table, name: str, md: sa.MetaData, renames: dict[str, str]) -> sa.Table:
    """``src``'s columns, primary key, unique constraints, indexes and foreign keys
    under a new name (foreign keys to a renamed table follow the new name)."""
    cols = []
    for c in src.columns:
        fks = []
        for fk in c.foreign_keys:
            table, column = fk.target_fullname.split(".")
            fks.append(sa.ForeignKey(f"{renames[table]}.{column}" if table in renames else fk.column))
        cols.append(sa.Column(c.name, c.type, *fks, primary_key=c.primary_key, nullable=c.nullable))
    copy = sa.Table(name, md, *cols)
    for con in src.constraints:
        if isinstance(con, sa.UniqueConstraint):
            copy.append_constraint(sa.UniqueConstraint(*[c.name for c in con.columns]))
    for idx in src.indexes:
        sa.Index(f"{name}_{idx.name}", *[copy.c[c.name] for c in idx.columns], unique=bool(idx.unique))
    return copy


def run(ctx: Context) -> dict[str, Any]:
    from sopflow.conditions import audience_filter, parse
    from sopflow.engine.customers.fields import field_definitions
    from sopflow.engine.sops.enrolment import tenant_timezone
    from sopflow.engine.sops.manage import AUDIENCE_BATCH, compute_audience, get_sop, start_sop
    from sopflow.engine.sops.schedule import planned_times
    from sopflow.models import Customer, Enrollment, SopVersion, Touch
    from sopflow.models.types import UTCDateTime

    n = 200 if ctx.quick else ctx.args.s1_customers
    deadline = ctx.deadline("S1")
    db = ctx.database("s1")
    try:
        app = open_app(db.url)
        with api_client(app) as api:
            sop = ok(api.post("/api/v1/sops", json={"name": "sunscreen", "definition": DEFINITION}), 201)
            tenant_id = api.tenant_id
        sop_id = sop["id"]
        ctx.log(f"S1: loading {n:,} customers")
        insert_customers(app, tenant_id, people(n, 1))
        analyze(app)
        app.dispose()
        db.snapshot()

        ours_s: list[float] = []
        counters: dict[str, int] = {}
        for i in range(ctx.runs):
            app = open_app(db.restore())
            with app.tx() as s:
                start_sop(s, get_sop(s, tenant_id, sop_id), app.now())

            def enrol(app: Any = app) -> dict[str, Any]:
                progress: dict[str, Any] = {}
                for _ in range(n // AUDIENCE_BATCH + 3):
                    with app.tx() as s:
                        progress = compute_audience(s, app, tenant_id, sop_id, app.now())
                    deadline.check()
                    if progress.get("state") != "running":
                        break
                return progress

            seconds, progress = timed(enrol)
            ours_s.append(seconds)
            ctx.log(f"S1 run {i + 1}: {progress.get('enrolled', 0):,} enrolled in {seconds:.2f} s")
            if i == 0:
                with app.tx() as s:
                    enrolled = s.scalar(sa.select(sa.func.count()).select_from(Enrollment)) or 0
                    people_in = s.scalar(sa.select(sa.func.count(sa.distinct(Enrollment.customer_id)))) or 0
                    touches = s.scalar(sa.select(sa.func.count()).select_from(Touch)) or 0
                    pairs = (
                        s.scalar(
                            sa.select(sa.func.count()).select_from(
                                sa.select(Touch.enrollment_id, Touch.step_index).distinct().subquery()
                            )
                        )
                        or 0
                    )
                    definition = s.scalar(sa.select(SopVersion.definition).where(SopVersion.sop_id == sop_id))
                    due_wrong = 0
                    sample = s.execute(
                        sa.select(Enrollment.id, Enrollment.timezone, Enrollment.enrolled_at)
                        .order_by(Enrollment.id)
                        .limit(600)
                    ).all()
                    for eid, tz, at in sample:
                        want = planned_times(definition, at, tz)
                        got = list(
                            s.scalars(
                                sa.select(Touch.due_at)
                                .where(Touch.enrollment_id == eid)
                                .order_by(Touch.step_index)
                            )
                        )
                        due_wrong += got != want
                counters.update(
                    enrol_missing=n - enrolled,
                    duplicate_enrolments=enrolled - people_in,
                    touch_missing=5 * n - touches,
                    duplicate_touches=touches - pairs,
                    due_time_mismatches=due_wrong,
                    due_times_checked=len(sample),
                )
            app.dispose()

        # baseline: per-customer ORM inserts, one transaction each, on a slice (scaled)
        slice_n = min(n, 100 if ctx.quick else ctx.args.s1_baseline)
        app = open_app(db.restore())
        with app.tx() as s:
            start_sop(s, get_sop(s, tenant_id, sop_id), app.now())
        base_s, base_n = naive(app, tenant_id, sop_id, slice_n)
        app.dispose()
        ctx.log(f"S1 baseline: {base_n:,} customers in {base_s:.2f} s")
        deadline.check()

        # hardware limit: set-based INSERT … SELECT into scratch copies of the two tables
        app = open_app(db.restore())
        md = sa.MetaData()
        renames = {"enrollments": "bench_enrollments"}
        enr = scratch_copy(Enrollment.__table__, "bench_enrollments", md, renames)
        tch = scratch_copy(Touch.__table__, "bench_touches", md, renames)
        plan = sa.Table(
            "bench_plan",
            md,
            sa.Column("timezone", sa.String(64), primary_key=True),
            sa.Column("step_index", sa.Integer, primary_key=True),
            sa.Column("due_at", UTCDateTime, nullable=False),
        )
        md.create_all(app.engine)
        now = app.now()
        with app.tx() as s:
            version = s.scalar(sa.select(SopVersion).where(SopVersion.sop_id == sop_id))
            tz = tenant_timezone(s, tenant_id)
            where = audience_filter(
                s,
                parse(DEFINITION["target"]["rule"], field_definitions(s, tenant_id, app.plugins)),
                tenant_id=tenant_id,
                tenant_timezone=tz,
                now=now,
            )
            version_id, definition = version.id, version.definition
        with app.engine.begin() as conn:
            conn.execute(
                sa.insert(plan),
                [
                    {"timezone": zone, "step_index": k, "due_at": due}
                    for zone in {*ZONES, tz}
                    for k, due in enumerate(planned_times(definition, now, zone))
                ],
            )
        c = Customer.__table__
        enrol_rows = sa.insert(enr).from_select(
            [
                "id",
                "tenant_id",
                "sop_id",
                "sop_version_id",
                "customer_id",
                "entry_seq",
                "status",
                "timezone",
                "enrolled_at",
                "depth",
                "rearmed",
            ],
            sa.select(
                c.c.id,
                sa.literal(tenant_id),
                sa.literal(sop_id),
                sa.literal(version_id),
                c.c.id,
                sa.literal(0),
                sa.literal("active"),
                sa.func.coalesce(c.c.timezone, tz),
                sa.literal(now, type_=UTCDateTime()),
                sa.literal(0),
                sa.false(),
            ).where(c.c.tenant_id == tenant_id, c.c.merged_into_id.is_(None), where),
        )
        touch_rows = sa.insert(tch).from_select(
            [
                "tenant_id",
                "sop_id",
                "enrollment_id",
                "customer_id",
                "step_index",
                "status",
                "planned_at",
                "due_at",
                "attempts",
                "deferrals",
                "outcome",
            ],
            sa.select(
                enr.c.tenant_id,
                enr.c.sop_id,
                enr.c.id,
                enr.c.customer_id,
                plan.c.step_index,
                sa.literal("scheduled"),
                plan.c.due_at,
                plan.c.due_at,
                sa.literal(0),
                sa.literal(0),
                sa.literal({}, type_=tch.c.outcome.type),
            ).select_from(enr.join(plan, plan.c.timezone == enr.c.timezone)),
        )
        limit_s: list[float] = []
        limit_rows = 0
        for _ in range(ctx.runs):
            with app.engine.begin() as conn:
                conn.execute(sa.delete(tch))
                conn.execute(sa.delete(enr))
            with app.engine.begin() as conn:

                def insert(conn: Any = conn) -> None:
                    conn.execute(enrol_rows)
                    conn.execute(touch_rows)

                seconds, _ = timed(insert)
            limit_s.append(seconds)
            with app.engine.connect() as conn:
                limit_rows = conn.scalar(sa.select(sa.func.count()).select_from(tch)) or 0
            deadline.check()
        counters["limit_touches"] = limit_rows
        app.dispose()
    finally:
        db.close()

    steps = 5 * n
    engine_name = "SQLite" if ctx.backend == "sqlite" else "Postgres"
    return {
        "scenario": "S1",
        "title": "enrolment",
        "rows": [
            {
                "id": "S1",
                "what": "enrol into a 5-touch nurture SOP (`compute_audience`)",
                "size": f"{n:,} customers → {steps:,} touches",
                "ours": figure(median(ours_s), steps, "touches/s", ours_s, enrolments=n),
                "baseline": figure(
                    base_s * n / max(base_n, 1),
                    steps,
                    "touches/s",
                    what=(
                        f"per customer: ORM enrolment + 5 touches, one transaction; {base_n:,} customers "
                        f"in {base_s:.2f} s, scaled"
                    ),
                    measured_seconds=round(base_s, 3),
                    measured_count=base_n,
                ),
                "limit": figure(
                    median(limit_s),
                    steps,
                    "touches/s",
                    limit_s,
                    what="2 INSERT … SELECT into scratch copies of enrollments + touches",
                ),
                "bound": (
                    f"per batch of {AUDIENCE_BATCH:,}: one INSERT … SELECT of enrolments per time zone "
                    "and one of touches per step and zone, each with NOT EXISTS probes "
                    f"({engine_name} CPU, one core)"
                ),
            }
        ],
        "counters": counters,
        "sizes": {"customers": n, "touches": steps, "batch": AUDIENCE_BATCH},
    }

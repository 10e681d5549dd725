"""S7 journey sync: place N existing customers on a 5-stage journey, then re-run.

Ours: ``sopflow.engine.journeys.sync.run_sync`` (set-based, one transaction per
batch), first run and re-run (which must move nobody).  Baseline: the naive way
on a slice, scaled to N — load the slice's rows in bulk, snapshot each customer,
``target_stage`` in Python, write each move through the ORM (``move_customer``,
one transaction per customer).  Hardware limit: one raw ``INSERT … SELECT`` of
every customer matching the top stage's rule into a scratch table (for the
re-run: one ``SELECT count(*)`` with that ``WHERE``).
"""

from __future__ import annotations

import random
from collections import defaultdict
from typing import Any

import attrs
import sqlalchemy as sa

from bench.load import Context, analyze, api_client, figure, insert_customers, median, ok, open_app, timed

TAGS = ["咨询", "拔牙", "复查", "vip", "价格", "试听"]
CITIES = ["上海", "北京", "杭州", "深圳"]


def _tags(*t: str) -> dict[str, Any]:
    return {"tags": {"any_of": list(t)}}


#: 5 stages, 1–5 rules each (OR of AND), some naming the current stage.
STAGES = [
    {
        "name": "激活",
        "rules": [
            {"conditions": [_tags("咨询")]},
            {"conditions": [{"field": "city", "op": "eq", "value": "上海"}, _tags("试听")]},
        ],
    },
    {
        "name": "兴趣",
        "rules": [
            {"conditions": [_tags("价格"), {"churned": False}]},
            {"conditions": [{"field": "city", "op": "eq", "value": "杭州"}, _tags("试听", "vip")]},
            {"conditions": [{"field": "score", "op": "gte", "value": 85}, {"churned": False}]},
        ],
    },
    {
        "name": "孵化",
        "rules": [
            {"conditions": [{"stage": {"in": ["兴趣"]}}, {"field": "order_count", "op": "gte", "value": 1}]},
            {"conditions": [{"tags": {"all_of": ["拔牙", "复查"]}}]},
            {"conditions": [{"field": "score", "op": "between", "value": [70, 80]}, _tags("咨询")]},
            {"conditions": [{"stage": {"in": ["激活"]}}, {"field": "score", "op": "gte", "value": 50}]},
        ],
    },
    {
        "name": "决策",
        "rules": [
            {
                "conditions": [
                    {"field": "order_count", "op": "between", "value": [2, 4]},
                    {"not": {"field": "city", "op": "in", "value": ["北京"]}},
                    {"churned": False},
                ]
            },
            {"conditions": [{"field": "score", "op": "gte", "value": 90}, _tags("vip")]},
        ],
    },
    {
        "name": "签单",
        "rules": [
            {"conditions": [{"field": "order_count", "op": "gte", "value": 5}, _tags("vip")]},
            {"conditions": [{"stage": {"in": ["决策"]}}, _tags("拔牙")]},
            {
                "conditions": [
                    {"field": "order_count", "op": "gte", "value": 6},
                    {"field": "city", "op": "eq", "value": "上海"},
                ]
            },
            {
                "conditions": [
                    {"field": "score", "op": "gte", "value": 95},
                    {"field": "order_count", "op": "gte", "value": 3},
                ]
            },
            {"conditions": [{"tags": {"all_of": ["vip", "价格", "拔牙"]}}, {"churned": False}]},
        ],
    },
]


NAME = "S7"
ORDER = 10
MUST_BE_ZERO = ("placement_mismatches", "rerun_moves", "open_history_duplicates")


def add_arguments(ap: Any) -> None:
    g = ap.add_argument_group("S7 journey sync")
    g.add_argument("--s7-customers", type=int, default=1_000_000, help="customers to place (quick: 2,000)")
    g.add_argument("--s7-baseline", type=int, default=5_000, help="slice for the naive Python baseline")
    g.add_argument("--s7-sample", type=int, default=20_000, help="customers checked against Python placement")
    g.add_argument("--s7-batch", type=int, default=None, help="run_sync batch (default: the engine's)")


def people(n: int, seed: int, stage_ids: list[int]) -> Any:
    from sopflow.conditions import to_storage

    rng = random.Random(seed)
    for _ in range(n):
        f: dict[str, Any] = {}
        if rng.random() < 0.8:
            f["city"] = rng.choice(CITIES)
        if rng.random() < 0.85:
            f["order_count"] = to_storage("number", rng.randint(0, 7))
        if rng.random() < 0.7:
            f["score"] = to_storage("number", rng.randint(0, 100))
        yield {
            "fields": f,
            "churned": rng.random() < 0.1,
            "tags": [t for t in TAGS if rng.random() < 0.1],
            "stage_id": rng.choice(stage_ids) if rng.random() < 0.3 else None,
        }


def _journey(app: Any, tenant_id: int, journey_id: int) -> tuple[Any, Any, dict[str, Any], str]:
    from sopflow.engine.customers.fields import field_definitions
    from sopflow.engine.journeys.manage import get_journey
    from sopflow.engine.journeys.placement import parsed_stage_rules
    from sopflow.engine.sops.enrolment import tenant_timezone

    with app.tx() as s:
        j = get_journey(s, tenant_id, journey_id)
        fields = field_definitions(s, tenant_id, app.plugins)
        rules, positions = parsed_stage_rules(s, j, fields)
        tz = tenant_timezone(s, tenant_id)
        s.expunge_all()
    return j, (rules, positions), fields, tz


def load_inputs(
    app: Any, tenant_id: int, pid: int, where: Any
) -> list[tuple[int, dict, frozenset, bool, Any]]:
    """(id, fields, tags, churned, current stage name) for the customers ``where`` selects, in bulk."""
    from sopflow.models import Customer, CustomerStage, CustomerTag, Stage

    c = Customer.__table__
    with app.engine.connect() as conn:
        rows = conn.execute(
            sa.select(c.c.id, c.c.fields, c.c.churned_at)
            .where(c.c.tenant_id == tenant_id, where(c.c.id))
            .order_by(c.c.id)
        ).all()
        tags: dict[int, set[str]] = defaultdict(set)
        for cid, tag in conn.execute(
            sa.select(CustomerTag.customer_id, CustomerTag.tag).where(where(CustomerTag.customer_id))
        ):
            tags[cid].add(tag)
        stages = dict(
            conn.execute(
                sa.select(CustomerStage.customer_id, Stage.name)
                .join(Stage, Stage.id == CustomerStage.stage_id)
                .where(CustomerStage.pipeline_id == pid, where(CustomerStage.customer_id))
            ).all()
        )
    return [(r.id, r.fields, frozenset(tags[r.id]), r.churned_at is not None, stages.get(r.id)) for r in rows]


def python_moves(journey: Any, parsed: Any, tz: str, person: tuple, now: Any) -> list[Any]:
    """The stages ``target_stage`` moves one customer through (a move can enable the next)."""
    from sopflow.conditions import CustomerSnapshot
    from sopflow.engine.journeys.placement import target_stage

    rules, positions = parsed
    _, fields, tags, churned, current = person
    pid = journey.pipeline_id
    snap = CustomerSnapshot(
        fields=fields, tags=tags, stages={pid: current} if current else {}, churned=churned, timezone=tz
    )
    moves = []
    for _ in range(len(rules) + 1):
        target = target_stage(rules, positions, snap, now, journey)
        if target is None:
            break
        moves.append(target)
        snap = attrs.evolve(snap, stages={pid: target.name})
    return moves


def naive(app: Any, tenant_id: int, journey_id: int, limit: int) -> tuple[float, int]:
    """The per-customer Python baseline on the first ``limit`` customers; returns (seconds, moves)."""
    from sopflow.engine.journeys.pipelines import move_customer
    from sopflow.models import Customer

    def go() -> int:
        journey, parsed, _, tz = _journey(app, tenant_id, journey_id)
        with app.engine.connect() as conn:
            ids = conn.execute(
                sa.select(Customer.id)
                .where(Customer.tenant_id == tenant_id)
                .order_by(Customer.id)
                .limit(limit)
            ).scalars()
            top = max(ids, default=0)
        now = app.now()
        moved = 0
        for person in load_inputs(app, tenant_id, journey.pipeline_id, lambda col: col <= top):
            moves = python_moves(journey, parsed, tz, person, now)
            if moves:
                with app.tx() as s:  # one transaction per customer, ORM writes
                    for stage in moves:
                        move_customer(s, tenant_id, person[0], stage, "rule", now)
                moved += len(moves)
        return moved

    return timed(go)


def run(ctx: Context) -> dict[str, Any]:
    from sopflow.conditions import audience_filter, parse
    from sopflow.conditions.compile import customers
    from sopflow.engine.journeys.manage import get_journey, stage_rules
    from sopflow.engine.journeys.sync import BATCH, request_sync, run_sync
    from sopflow.models import CustomerStage, StageHistory

    a = ctx.args
    n = 2_000 if ctx.quick else a.s7_customers
    slice_n = min(n, 300 if ctx.quick else a.s7_baseline)
    sample = n if ctx.quick else min(n, a.s7_sample)
    batch = a.s7_batch or BATCH
    deadline = ctx.deadline("S7")

    db = ctx.database("s7")
    try:
        app = open_app(db.url)
        with api_client(app) as api:
            for key, kind in (("city", "text"), ("order_count", "number"), ("score", "number")):
                ok(api.post("/api/v1/fields", json={"key": key, "label": key, "type": kind}), 201)
            journey = ok(api.post("/api/v1/journeys", json={"name": "lifecycle", "stages": STAGES}), 201)
            ok(api.post(f"/api/v1/journeys/{journey['id']}/start"), 200)
            tenant_id = api.tenant_id
        jid, pid = journey["id"], journey["pipeline_id"]
        stage_ids = [s["id"] for s in journey["stages"]]
        names = {s["id"]: s["name"] for s in journey["stages"]}
        ctx.log(f"S7: loading {n:,} customers")
        load_s, _ = timed(lambda: insert_customers(app, tenant_id, people(n, 7, stage_ids), pipeline_id=pid))
        analyze(app)
        app.dispose()
        db.snapshot()
        deadline.check()

        every = max(1, n // max(sample, 1))
        first_s, rerun_s = [], []
        counters: dict[str, int] = {}
        placed = rerun_placed = 0
        for i in range(ctx.runs):
            app = open_app(db.restore())
            expected: dict[int, Any] = {}
            if i == 0:
                journey_obj, parsed, _, tz = _journey(app, tenant_id, jid)
                for person in load_inputs(app, tenant_id, pid, lambda col: col % every == 0):
                    moves = python_moves(journey_obj, parsed, tz, person, app.now())
                    expected[person[0]] = moves[-1].name if moves else person[4]
            for sink in (first_s, rerun_s):
                with app.tx() as s:
                    request_sync(s, get_journey(s, tenant_id, jid), app.now())
                seconds, state = timed(
                    lambda app=app: run_sync(
                        app,
                        tenant_id,
                        jid,
                        batch=batch,
                        max_batches=n // batch + 5,
                        progress=lambda _: deadline.check(),
                    )
                )
                if state.get("state") != "done":
                    raise RuntimeError(f"S7 sync did not finish: {state}")
                sink.append(seconds)
                if sink is first_s:
                    placed = state["placed"]
                else:
                    rerun_placed = max(rerun_placed, state["placed"])
            ctx.log(
                f"S7 run {i + 1}: first {first_s[-1]:.2f} s ({placed:,} placed), re-run {rerun_s[-1]:.2f} s"
            )
            if i == 0:
                with app.engine.connect() as conn:
                    got = dict(
                        conn.execute(
                            sa.select(CustomerStage.customer_id, CustomerStage.stage_id).where(
                                CustomerStage.pipeline_id == pid, CustomerStage.customer_id % every == 0
                            )
                        ).all()
                    )
                    stage_rows = conn.scalar(
                        sa.select(sa.func.count())
                        .select_from(CustomerStage)
                        .where(CustomerStage.pipeline_id == pid)
                    )
                    open_rows = conn.scalar(
                        sa.select(sa.func.count())
                        .select_from(StageHistory)
                        .where(StageHistory.pipeline_id == pid, StageHistory.left_at.is_(None))
                    )
                # a customer the rules do not move keeps the stage they had (stages are sticky)
                mismatches = sum(1 for cid, want in expected.items() if names.get(got.get(cid)) != want)
                counters.update(
                    placement_checked=len(expected),
                    placement_mismatches=mismatches,
                    open_history_duplicates=abs((open_rows or 0) - (stage_rows or 0)),
                )
            app.dispose()
            deadline.check()
        counters["rerun_moves"] = rerun_placed

        # baseline: naive Python on a slice, then again (nobody moves: evaluation cost only)
        app = open_app(db.restore())
        base_s, base_moves = naive(app, tenant_id, jid, slice_n)
        base_re_s, base_re_moves = naive(app, tenant_id, jid, slice_n)
        counters["baseline_rerun_moves"] = base_re_moves
        app.dispose()
        ctx.log(f"S7 baseline: {slice_n:,} customers in {base_s:.2f} s, re-run {base_re_s:.2f} s")
        deadline.check()

        # hardware limit: one INSERT … SELECT of the top stage's WHERE into a scratch table
        app = open_app(db.restore())
        scratch = sa.Table(
            "bench_s7_scratch",
            sa.MetaData(),
            sa.Column("customer_id", sa.Integer, primary_key=True),
            sa.Column("stage_id", sa.Integer, nullable=False),
        )
        scratch.create(app.engine)
        with app.tx() as s:
            j = get_journey(s, tenant_id, jid)
            from sopflow.engine.customers.fields import field_definitions
            from sopflow.engine.sops.enrolment import tenant_timezone

            top_stage, top_rule = stage_rules(s, j)[0]
            where = sa.and_(
                customers.c.tenant_id == tenant_id,
                customers.c.merged_into_id.is_(None),
                audience_filter(
                    s,
                    parse(top_rule, field_definitions(s, tenant_id, app.plugins)),
                    tenant_id,
                    now=app.now(),
                    tenant_timezone=tenant_timezone(s, tenant_id),
                ),
            )
            top_id = top_stage.id
        insert = sa.insert(scratch).from_select(
            ["customer_id", "stage_id"], sa.select(customers.c.id, sa.literal(top_id)).where(where)
        )
        count = sa.select(sa.func.count()).select_from(customers).where(where)
        limit_s, scan_s, top_matches = [], [], 0
        for _ in range(ctx.runs):
            with app.engine.begin() as conn:
                conn.execute(sa.delete(scratch))
            with app.engine.begin() as conn:
                seconds, _ = timed(lambda conn=conn: conn.execute(insert))
            limit_s.append(seconds)
            with app.engine.connect() as conn:
                seconds, top_matches = timed(lambda conn=conn: conn.execute(count).scalar_one())
            scan_s.append(seconds)
        app.dispose()
        deadline.check()
    finally:
        db.close()

    scale = n / max(slice_n, 1)
    size = f"{n:,} customers"
    bound = (
        f"per batch of {batch:,}: 5 INSERT … SELECT (one per stage) per round, ~3 rounds because rules "
        "name the current stage; a `stage.changed` event row built in Python per move (CPU, one core)"
    )
    return {
        "scenario": "S7",
        "title": "journey sync",
        "load_seconds": round(load_s, 1),
        "rows": [
            {
                "id": "S7",
                "what": "journey sync, first run",
                "size": size,
                "ours": figure(median(first_s), n, "customers/s", first_s, placed=placed),
                "baseline": figure(
                    base_s * scale,
                    n,
                    "customers/s",
                    what=f"per-customer Python + ORM move, {slice_n:,} customers in {base_s:.2f} s, scaled",
                    measured_seconds=round(base_s, 3),
                    measured_count=slice_n,
                    moves=base_moves,
                ),
                "limit": figure(
                    median(limit_s),
                    n,
                    "customers/s",
                    limit_s,
                    what=f"one INSERT … SELECT with the top stage's WHERE ({top_matches:,} rows)",
                ),
                "bound": bound,
            },
            {
                "id": "S7",
                "what": "journey sync, re-run (0 moves)",
                "size": size,
                "ours": figure(median(rerun_s), n, "customers/s", rerun_s, placed=rerun_placed),
                "baseline": figure(
                    base_re_s * scale,
                    n,
                    "customers/s",
                    what=f"per-customer Python, nobody moves: {slice_n:,} in {base_re_s:.2f} s, scaled",
                    measured_seconds=round(base_re_s, 3),
                    measured_count=slice_n,
                ),
                "limit": figure(
                    median(scan_s),
                    n,
                    "customers/s",
                    scan_s,
                    what="one SELECT count(*) with the top stage's WHERE",
                ),
                "bound": "5 INSERT … SELECT per batch that find nobody to move, plus a DELETE (CPU)",
            },
        ],
        "counters": counters,
        "sizes": {"customers": n, "baseline_slice": slice_n, "sample": sample, "batch": batch},
    }

"""S3/S5 dispatch burst: N touches (one per customer) due at the same instant
on the built-in ``log`` channel, in-process on one database.

Ours: ``sopflow.engine.delivery.dispatch.run_until_idle`` with the manual clock set to the
due instant (claim with lease, then deliver in batches: re-check, render,
channel call, outcome, ``touch.sent`` event, completion).  There is no real
clock, so the lateness of a touch is the wall time from the start of the drain
until the channel received it; p50/p99/max of that, and the drain time, are
reported.  Peers (one run each, real clock, the same N): naive Dramatiq — one
delayed message per touch, all due at one instant, the default worker (2
processes × 8 threads) on a private Redis; APScheduler 3 with the
SQLAlchemyJobStore on the same kind of database (SQLite file or Postgres), 10
threads, every job run however late.  Their lateness runs from the due instant
to each execution; their figure is the drain (due instant → last execution).
Baseline: a naive loop in the same process — select the next due touch, call
the channel, mark it sent, one transaction per touch (no claim, no lease, no
cap, no event).
Hardware limit: claim 1,000 due touches per transaction with one
``UPDATE … RETURNING``, a no-op call per touch, one ``UPDATE`` marking them sent.

Correctness: early fires (dispatched with the clock 1 ms before the due
instant, or ``sent_at`` before it) = 0; duplicate channel calls
(idempotency keys seen twice) = 0; lost (not sent) = 0.  The touches are
inserted with Core (setup, not timed); the enrolment path is S1.
"""

from __future__ import annotations

import time
from datetime import timedelta
from typing import Any

import sqlalchemy as sa

from bench.e2e import add_touches
from bench.load import (
    START,
    Context,
    analyze,
    api_client,
    figure,
    median,
    ok,
    open_app,
)
from bench.peers import apscheduler_burst, dramatiq_delayed
from bench.servers import redis_server

DUE = START + timedelta(hours=1)
DEFINITION = {
    "kind": "nurture",
    "target": {"rule": {"tags": {"any_of": ["burst"]}}},
    "steps": [
        {
            "day": 1,
            "at": "09:00",
            "actions": [
                {
                    "type": "send",
                    "channel": "log",
                    "touchpoint": "private_chat",
                    "text": "Hi {{ customer.display_name }}",
                }
            ],
        }
    ],
}


NAME = "S3"
ALIASES = ("S5",)
ORDER = 40
MUST_BE_ZERO = (
    "early_fires",
    "duplicates",
    "lost",
    "peer_dramatiq_lost",
    "peer_dramatiq_duplicates",
    "peer_aps_lost",
    "peer_aps_duplicates",
)


def add_arguments(ap: Any) -> None:
    g = ap.add_argument_group("S3/S5 dispatch burst")
    g.add_argument("--s3-touches", type=int, default=5_000, help="touches due at once (quick: 200)")


class Recorder:
    """Wraps the log channel: the wall time of every call, and every key it was called with."""

    def __init__(self, channel: Any) -> None:
        self.channel = channel
        self.capabilities = channel.capabilities
        self.calls: list[tuple[str, float]] = []

    def check(self, message: Any) -> None:
        self.channel.check(message)

    def send(self, message: Any) -> Any:
        self.calls.append((message.idempotency_key, time.perf_counter()))
        return self.channel.send(message)


def percentile(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def lateness(calls: list[tuple[str, float]], t0: float) -> dict[str, float]:
    offsets = [t - t0 for _, t in calls]
    return {
        "p50_s": round(percentile(offsets, 0.5), 3),
        "p99_s": round(percentile(offsets, 0.99), 3),
        "max_s": round(max(offsets, default=0.0), 3),
    }


def outcome(app: Any, recorder: Recorder, n: int) -> dict[str, int]:
    from sopflow.models import Touch

    with app.engine.connect() as conn:
        sent = conn.scalar(sa.select(sa.func.count()).select_from(Touch).where(Touch.status == "sent")) or 0
        early = (
            conn.scalar(
                sa.select(sa.func.count())
                .select_from(Touch)
                .where(Touch.sent_at.is_not(None), Touch.sent_at < DUE)
            )
            or 0
        )
        deferred = conn.scalar(sa.select(sa.func.count()).select_from(Touch).where(Touch.deferrals > 0)) or 0
    keys = [k for k, _ in recorder.calls]
    return {
        "sent": sent,
        "early_fires": early,
        "duplicates": len(keys) - len(set(keys)),
        "lost": n - sent,
        "deferred": deferred,
    }


def log_channel() -> Any:
    from sopflow.defaults.channels import LogChannel

    return LogChannel({}, {})


def naive(app: Any, n: int) -> tuple[Recorder, float]:
    """Select the next due touch, call the channel, mark it sent — one transaction each."""
    from sopflow.models import Customer, Touch
    from sopflow_sdk import OutboundMessage

    recorder = Recorder(log_channel())
    t, c = Touch.__table__, Customer.__table__
    now = app.now()
    t0 = time.perf_counter()
    for _ in range(n + 5):
        with app.engine.begin() as conn:
            row = conn.execute(
                sa.select(t.c.id, t.c.customer_id, c.c.display_name)
                .join(c, c.c.id == t.c.customer_id)
                .where(t.c.status == "scheduled", t.c.due_at <= now)
                .order_by(t.c.due_at, t.c.id)
                .limit(1)
            ).first()
            if row is None:
                break
            recorder.send(
                OutboundMessage(
                    touchpoint="private_chat",
                    text=f"Hi {row.display_name}",
                    idempotency_key=f"touch:{row.id}:0",
                    recipient={"customer_id": row.customer_id},
                )
            )
            conn.execute(sa.update(t).where(t.c.id == row.id).values(status="sent", sent_at=now))
    return recorder, t0


def batch_limit(app: Any, n: int, batch: int = 1_000) -> tuple[Recorder, float]:
    """Claim ``batch`` due touches per transaction with one UPDATE … RETURNING, no-op send, mark sent."""
    from sopflow.models import Touch

    t = Touch.__table__
    now = app.now()
    recorder = Recorder(log_channel())
    t0 = time.perf_counter()
    for _ in range(n // batch + 5):
        with app.engine.begin() as conn:
            due = (
                sa.select(t.c.id)
                .where(t.c.status == "scheduled", t.c.due_at <= now)
                .order_by(t.c.due_at, t.c.id)
                .limit(batch)
            )
            if app.engine.dialect.name == "postgresql":
                due = due.with_for_update(skip_locked=True)
            ids = list(
                conn.execute(
                    sa.update(t)
                    .where(t.c.id.in_(due.scalar_subquery()))
                    .values(
                        status="claimed", lease_until=now + timedelta(minutes=5), attempts=t.c.attempts + 1
                    )
                    .returning(t.c.id)
                ).scalars()
            )
        if not ids:
            break
        stamp = time.perf_counter()
        recorder.calls.extend((f"touch:{i}:0", stamp) for i in ids)  # the no-op send
        with app.engine.begin() as conn:
            conn.execute(sa.update(t).where(t.c.id.in_(ids)).values(status="sent", sent_at=now))
    return recorder, t0


def run(ctx: Context) -> dict[str, Any]:
    from sopflow.engine.delivery.dispatch import run_until_idle
    from sopflow.models import Sop, SopVersion

    n = 200 if ctx.quick else ctx.args.s3_touches
    deadline = ctx.deadline("S3")
    db = ctx.database("s3")
    try:
        app = open_app(db.url)
        with api_client(app) as api:
            sop = ok(api.post("/api/v1/sops", json={"name": "burst", "definition": DEFINITION}), 201)
            ok(api.post(f"/api/v1/sops/{sop['id']}/start"))  # nobody yet: the audience is empty
            tenant_id = api.tenant_id
        sop_id = sop["id"]
        ctx.log(f"S3: loading {n:,} customers, enrolments and touches due at one instant")
        with app.engine.connect() as conn:
            version_id = conn.scalar(sa.select(SopVersion.id).where(SopVersion.sop_id == sop_id))
            assert conn.scalar(sa.select(Sop.status).where(Sop.id == sop_id)) == "started"
        add_touches(app, tenant_id, sop_id, version_id, ([DUE] for _ in range(n)), name="客户")
        analyze(app)
        app.dispose()
        db.snapshot()

        ours_s: list[float] = []
        ours_late: list[dict[str, float]] = []
        counters: dict[str, int] = {}
        for i in range(ctx.runs):
            app = open_app(db.restore())
            recorder = Recorder(log_channel())
            app.channels[(tenant_id, "log")] = recorder  # channel_for's cache
            app.clock.set(DUE - timedelta(milliseconds=1))  # a hair before: nothing may go out
            early = run_until_idle(app, max_rounds=n // 500 + 10)
            app.clock.set(DUE)
            t0 = time.perf_counter()
            dispatched = run_until_idle(app, max_rounds=n // 500 + 10)
            seconds = time.perf_counter() - t0
            ours_s.append(seconds)
            ours_late.append(lateness(recorder.calls, t0))
            result = outcome(app, recorder, n)
            result["early_fires"] += early
            if len({k for k, _ in recorder.calls}) < result["sent"]:
                raise RuntimeError("sends bypassed the recording channel (channel_for's cache changed?)")
            for key, value in result.items():
                if key != "sent":
                    counters[key] = max(counters.get(key, 0), value)
            counters["dispatched_min"] = min(counters.get("dispatched_min", dispatched), dispatched)
            ctx.log(f"S3 run {i + 1}: {result['sent']:,} sent in {seconds:.2f} s")
            app.dispose()
            deadline.check()

        app = open_app(db.restore())
        app.clock.set(DUE)
        recorder, t0 = naive(app, n)
        base_s = time.perf_counter() - t0
        base_late = lateness(recorder.calls, t0)
        base = outcome(app, recorder, n)
        counters["baseline_lost"] = base["lost"]
        app.dispose()
        ctx.log(f"S3 baseline: {base['sent']:,} sent in {base_s:.2f} s")
        deadline.check()

        # the peers, for the same N, with the real clock: lateness after their due instant
        with redis_server() as redis_url:
            dq = dramatiq_delayed(n, processes=2, threads=8, redis_url=redis_url)
        ctx.log(f"S3 peer Dramatiq: {dq['ran']:,} ran, drain {dq['drain_s']:.2f} s")
        deadline.check()
        aps_db = ctx.database("s3aps")
        try:
            aps = apscheduler_burst(n, aps_db.url)  # misfire_grace_time=None: every job runs
        finally:
            aps_db.close()
        ctx.log(f"S3 peer APScheduler: {aps['ran']:,} ran, drain {aps['drain_s']:.2f} s")
        counters.update(
            peer_dramatiq_lost=dq["lost"],
            peer_dramatiq_duplicates=dq["duplicates"],
            peer_aps_lost=aps["lost"],
            peer_aps_duplicates=aps["duplicates"],
        )
        deadline.check()

        limit_s: list[float] = []
        for _ in range(ctx.runs):
            app = open_app(db.restore())
            app.clock.set(DUE)
            limit_rec, t0 = batch_limit(app, n)
            limit_s.append(time.perf_counter() - t0)
            counters["limit_lost"] = max(counters.get("limit_lost", 0), outcome(app, limit_rec, n)["lost"])
            app.dispose()
            deadline.check()
    finally:
        db.close()

    mid = sorted(range(len(ours_s)), key=lambda k: ours_s[k])[len(ours_s) // 2]
    late = ours_late[mid]
    ours = figure(
        median(ours_s),
        n,
        "touches/s",
        ours_s,
        lateness=late,
        note=f"lateness p50 {late['p50_s']:.2f} s, p99 {late['p99_s']:.2f} s, max {late['max_s']:.2f} s",
    )
    limit = figure(
        median(limit_s),
        n,
        "touches/s",
        limit_s,
        what="claim 1,000/txn with UPDATE … RETURNING, no-op send, mark sent",
    )
    bound = (
        "Python CPU on one core, not SQL: per claim of 500 a few Core statements (touches as rows, one "
        "cap-slot upsert); per batch of 50 a prepare transaction (touches as rows; enrolments, customers, "
        "identities as ORM objects; render) and a Core record transaction (outcomes, `touch.sent` "
        "events, completions)"
    )

    def peer(result: dict[str, Any], what: str) -> dict[str, Any]:
        lat = result["lateness"]
        return figure(
            result["drain_s"],
            n,
            "touches/s",
            [result["drain_s"]],
            lateness=lat,
            note=f"p50 {lat['p50_s']:.2f} s, p99 {lat['p99_s']:.2f} s, max {lat['max_s']:.2f} s",
            what=what + "; 1 run",
        )

    return {
        "scenario": "S3",
        "title": "dispatch burst (S3/S5)",
        "rows": [
            {
                "id": "S3/S5",
                "what": "dispatch burst, log channel (`run_until_idle`) vs naive Dramatiq",
                "size": f"{n:,} touches due at one instant",
                "ours": ours,
                "baseline": peer(
                    dq,
                    "naive Dramatiq: 1 delayed message per touch, default worker (2 processes × 8 threads)",
                ),
                "limit": limit,
                "bound": bound,
            },
            {
                "id": "S3/S5",
                "what": "the same burst vs APScheduler",
                "size": f"{n:,} touches due at one instant",
                "ours": ours,
                "baseline": peer(aps, "APScheduler 3, SQLAlchemyJobStore on the same database, 10 threads"),
                "limit": limit,
                "bound": bound,
            },
            {
                "id": "S3/S5",
                "what": "the same burst vs a naive loop",
                "size": f"{n:,} touches due at one instant",
                "ours": ours,
                "baseline": figure(
                    base_s,
                    n,
                    "touches/s",
                    [base_s],
                    lateness=base_late,
                    note=f"p50 {base_late['p50_s']:.2f} s, max {base_late['max_s']:.2f} s",
                    what="select the next due touch, send, mark sent (no cap, no events, no checks); 1 run",
                ),
                "limit": limit,
                "bound": bound,
            },
        ],
        "counters": counters,
        "sizes": {"touches": n},
    }

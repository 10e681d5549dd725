"""S2 sustained dispatch, end to end: N touches due now, delivered by our real
processes through Redis to the built-in ``log`` channel.

Ours: one ``sopflow scheduler`` and two ``sopflow worker --threads 8`` processes
(``SOPFLOW_REDIS_URL`` on a private ``redis-server``, the scenario's database:
a SQLite file in WAL mode, or Postgres with ``--backend postgres``, the
production figure), system clock, the engine's default settings otherwise.
The touches (one per customer, all due 1 s before the run) are bulk-inserted
and snapshotted; every run starts from the snapshot with an empty Redis, starts
the workers, then the scheduler.  Each channel call is one JSON log line of the
``log`` channel on the worker's stderr (near-zero cost; see ``bench/e2e.py``);
the figure is the sustained throughput from the first to the last delivery
(process start-up is not in it; the time from starting the scheduler to the
first delivery is in the note).
Baseline (peer): naive Dramatiq, one message per touch sent with
``send_with_options(delay=…)``, all due at one instant, default worker
settings (``dramatiq`` CLI, 2 processes × 8 threads) on the same private Redis,
a no-op actor; its throughput once due (first to last execution), same N.
Limit: the raw library's consume rate, N immediate messages to a no-op actor,
2 processes × 1 thread with ``dramatiq_queue_prefetch=256`` (the fastest layout
measured on this machine) — what one message per touch costs in Dramatiq
before any database work.  ``--quick`` boots the scheduler with the workers
and skips the limit (it is there for the counters).

Correctness: lost (a touch never delivered, or not ``sent`` in the database)
= 0; duplicates (an idempotency key logged by two processes) = 0; early fires
(one sentinel touch per 100, due an hour later, delivered; or ``sent_at``
before ``due_at``) = 0.  ``reclaimed`` counts touches claimed more than once
(lease expiry); it is reported, not required to be 0.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa

from bench.e2e import LogDeliveries, add_touches, started_sop
from bench.load import Context, analyze, figure, median, open_app
from bench.peers import dramatiq_delayed, dramatiq_noop_throughput
from bench.servers import processes, redis_server, sopflow_env, wait_until

NAME = "S2"
ORDER = 45
MUST_BE_ZERO = ("early_fires", "duplicates", "lost")
WORKERS = 2


def add_arguments(ap: Any) -> None:
    g = ap.add_argument_group("S2 dispatch end to end (scheduler + 2 workers + Redis)")
    g.add_argument("--s2-touches", type=int, default=20_000, help="touches due now (quick: 200)")
    g.add_argument("--s2-threads", type=int, default=8, help="threads per sopflow worker process")
    g.add_argument(
        "--s2-scheduler-interval",
        type=float,
        default=None,
        help="SOPFLOW_SCHEDULER_INTERVAL for the run (default: the engine's default)",
    )


def seed(ctx: Context, n: int) -> tuple[Any, int, list[int], list[int]]:
    """The database with n touches due 1 s ago and max(5, n/100) sentinels due in an hour."""
    db = ctx.database("s2")
    app = open_app(db.url)
    tenant_id, sop_id, version_id = started_sop(app, "s2", steps=1)
    now = datetime.now(UTC)
    due, later = now - timedelta(seconds=1), now + timedelta(hours=1)
    sentinels = max(5, n // 100)
    lo, hi = add_touches(app, tenant_id, sop_id, version_id, ([due] for _ in range(n)))
    slo, shi = add_touches(app, tenant_id, sop_id, version_id, ([later] for _ in range(sentinels)), "s")
    from sopflow.models import Touch

    t = Touch.__table__
    with app.engine.connect() as conn:
        ids = list(conn.scalars(sa.select(t.c.id).where(t.c.customer_id >= lo, t.c.customer_id < hi)))
        sentinel_ids = list(
            conn.scalars(sa.select(t.c.id).where(t.c.customer_id >= slo, t.c.customer_id < shi))
        )
    analyze(app)
    app.dispose()
    db.snapshot()
    return db, tenant_id, ids, sentinel_ids


def run_ours(
    ctx: Context,
    url: str,
    redis_url: str,
    ids: list[int],
    sentinels: list[int],
    bound: float,
    n_workers: int = WORKERS,
) -> dict[str, Any]:
    import redis

    client = redis.Redis.from_url(redis_url)
    client.flushdb()
    client.close()
    wanted = set(ids)
    extra: dict[str, Any] = {"redis_url": redis_url, "log_level": "INFO", "log_format": "json"}
    if ctx.args.s2_scheduler_interval is not None:
        extra["scheduler_interval"] = ctx.args.s2_scheduler_interval
    with processes("sopflow-bench-s2-") as procs:
        env = sopflow_env(url, procs.logdir, **extra)
        workers = [
            procs.sopflow("worker", env, "--threads", str(ctx.args.s2_threads), name=f"worker{i}")
            for i in range(n_workers)
        ]

        def ready() -> bool:
            for w in workers:
                if not w.alive():
                    raise RuntimeError(f"sopflow worker exited:\n{procs.logs()}")
            return all(b"worker started" in w.log.read_bytes() for w in workers)

        started = time.time()
        if ctx.quick:  # boot all three at once: seconds saved, the first deliveries may see one worker
            scheduler = procs.sopflow("scheduler", env)
        wait_until(ready, 90, "sopflow workers to start", every=0.1)
        ctx.log(f"S2: workers up in {time.time() - started:.1f} s")
        deliveries = LogDeliveries([w.log for w in workers])
        if not ctx.quick:
            started = time.time()
            scheduler = procs.sopflow("scheduler", env)
        until = time.time() + bound  # the wait for deliveries, after the workers are up
        for _ in range(10_000_000):
            deliveries.poll()
            if wanted <= deliveries.touches or time.time() > until:
                break
            if not scheduler.alive() or not all(w.alive() for w in workers):
                raise RuntimeError(f"a sopflow process exited:\n{procs.logs()}")
            time.sleep(0.1)
        time.sleep(0.5)  # late duplicates or early sentinels
        deliveries.poll()
        if not deliveries.touches & wanted and wanted:
            ctx.log(f"S2: nothing delivered within {bound:.0f} s:\n{procs.logs()}")
    return {"deliveries": deliveries, "started": started}


def check(url: str, ids: list[int], sentinels: list[int], deliveries: LogDeliveries) -> dict[str, int]:
    from sopflow.models import Touch

    t = Touch.__table__
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            sent = set(conn.scalars(sa.select(t.c.id).where(t.c.status == "sent")))
            early_db = conn.scalar(
                sa.select(sa.func.count())
                .select_from(t)
                .where(t.c.sent_at.is_not(None), t.c.sent_at < t.c.due_at)
            )
            reclaimed = conn.scalar(sa.select(sa.func.count()).select_from(t).where(t.c.attempts > 1))
    finally:
        engine.dispose()
    wanted = set(ids)
    return {
        "sent_in_db": len(sent & wanted),
        "lost": len(wanted - (deliveries.touches & sent)),
        "duplicates": deliveries.duplicates,
        "early_fires": len(set(sentinels) & (deliveries.touches | sent)) + int(early_db or 0),
        "reclaimed": int(reclaimed or 0),
    }


def run(ctx: Context) -> dict[str, Any]:
    n = 200 if ctx.quick else ctx.args.s2_touches
    deadline = ctx.deadline("S2")
    ctx.log(f"S2: loading {n:,} touches due now on {ctx.backend}")
    db, _, ids, sentinels = seed(ctx, n)
    ctx.log("S2: loaded")
    wanted = set(ids)
    counters: dict[str, int] = {}
    spans: list[float] = []
    notes: list[dict[str, float]] = []
    try:
        with redis_server() as redis_url:
            for i in range(ctx.runs):
                bound = min(60 + n / 20, max(10.0, deadline.end - time.monotonic() - 20))
                url = db.restore()
                out = run_ours(ctx, url, redis_url, ids, sentinels, bound)
                d: LogDeliveries = out["deliveries"]
                result = check(url, ids, sentinels, d)
                times = sorted(at for tid, at in d.calls if tid in wanted)
                span = (times[-1] - times[0]) if len(times) > 1 else float("nan")
                spans.append(span)
                notes.append(
                    {
                        "first_after_start_s": round(times[0] - out["started"], 3) if times else -1,
                        "drain_s": round(times[-1] - out["started"], 3) if times else -1,
                    }
                )
                for key, value in result.items():
                    counters[key] = max(counters.get(key, 0), value) if key != "sent_in_db" else value
                ctx.log(
                    f"S2 run {i + 1}: {len(d.touches & wanted):,}/{n:,} delivered, {span:.2f} s first→last"
                )
                deadline.check()
            # the same burst with one worker process: what the second one adds
            one_worker: list[float] = []
            for _ in range(0 if ctx.quick else 1):
                url = db.restore()
                bound = min(60 + n / 10, max(10.0, deadline.end - time.monotonic() - 20))
                d = run_ours(ctx, url, redis_url, ids, sentinels, bound, n_workers=1)["deliveries"]
                for key, value in check(url, ids, sentinels, d).items():
                    if key in MUST_BE_ZERO:
                        counters[f"one_worker_{key}"] = value
                times = sorted(at for tid, at in d.calls if tid in wanted)
                one_worker.append((times[-1] - times[0]) if len(times) > 1 else float("nan"))
                ctx.log(
                    f"S2 with 1 worker: {len(d.touches & wanted):,}/{n:,} delivered, {one_worker[-1]:.2f} s"
                )
                deadline.check()
            db.drop_copies()

            peer_runs = []
            for _ in range(ctx.runs):
                peer_runs.append(dramatiq_delayed(n, processes=2, threads=8, redis_url=redis_url))
                deadline.check()
            limit_runs = []
            for _ in range(0 if ctx.quick else ctx.runs):  # quick: counters only, no limit row
                limit_runs.append(
                    dramatiq_noop_throughput(
                        n, processes=2, threads=1, queue_prefetch=256, redis_url=redis_url
                    )
                )
                deadline.check()
    finally:
        db.close()

    for key in ("lost", "duplicates", "early"):
        counters[f"peer_{key}"] = max(r[key] for r in peer_runs)
    if limit_runs:
        counters["limit_lost"] = max(r["lost"] for r in limit_runs)
    mid = sorted(range(len(spans)), key=lambda k: spans[k])[len(spans) // 2]
    peer = sorted(peer_runs, key=lambda r: r["span_s"])[len(peer_runs) // 2]
    peer_late = peer["lateness"]
    limit = sorted(limit_runs, key=lambda r: r["span_s"])[len(limit_runs) // 2] if limit_runs else None
    pg = ctx.backend == "postgres"
    rows = [
        {
            "id": "S2",
            "what": "sustained dispatch, `sopflow scheduler` + 2 `sopflow worker` via Redis, log channel",
            "size": f"{n:,} touches due now ({'Postgres' if pg else 'SQLite WAL'})",
            "ours": figure(
                median(spans),
                n,
                "touches/s",
                spans,
                **notes[mid],
                note=(
                    f"first delivery {notes[mid]['first_after_start_s']:.1f} s after the scheduler "
                    f"started, all in {notes[mid]['drain_s']:.1f} s; first→last"
                ),
            ),
            "baseline": figure(
                peer["span_s"],
                peer["ran"],
                "msgs/s",
                [r["span_s"] for r in peer_runs],
                lateness=peer_late,
                enqueue_rate=peer["enqueue_rate"],
                note=(
                    f"lateness p50 {peer_late['p50_s']:.1f} s, p99 {peer_late['p99_s']:.1f} s; "
                    f"enqueue {peer['enqueue_rate']:,.0f}/s"
                ),
                what="naive Dramatiq: 1 delayed message per touch, all due at once, default 2×8 workers; "
                "first→last execution",
            ),
            "limit": figure(
                limit["span_s"],
                limit["ran"],
                "msgs/s",
                [r["span_s"] for r in limit_runs],
                enqueue_rate=limit["enqueue_rate"],
                what="raw Dramatiq: immediate messages to a no-op actor, 2×1 workers, prefetch 256",
            )
            if limit
            else None,
            "bound": (
                "Python CPU in the workers: per batch of 50 one prepare transaction through the ORM and "
                "one Core record transaction (outcomes, `touch.sent` events, completions), written "
                + ("on Postgres" if pg else "on one SQLite file shared by 3 processes (one writer at a time)")
                + "; scheduler tick (claims ≤ 500 per tick) and the 2 cores shared by the scheduler, "
                "2 workers, Redis" + (" and Postgres" if pg else "")
            ),
        }
    ]
    if one_worker:
        rows.append(_one_worker_row(rows[0], one_worker, spans, n))
    return {
        "scenario": "S2",
        "title": "dispatch end to end (scheduler + 2 workers + Redis)",
        "rows": rows,
        "counters": counters,
        "sizes": {"touches": n, "sentinels": len(sentinels), "worker_threads": ctx.args.s2_threads},
    }


def _one_worker_row(
    row: dict[str, Any], one_worker: list[float], spans: list[float], n: int
) -> dict[str, Any]:
    """The same burst with one worker process, against the same peers: the scale-out figure."""
    gain = median(one_worker) / median(spans)
    return {
        **row,
        "id": "S2",
        "what": "the same, with 1 `sopflow worker` process (scale-out: 2 processes against 1)",
        "ours": figure(
            median(one_worker),
            n,
            "touches/s",
            one_worker,
            note=f"first→last; 2 worker processes deliver {gain:.2f}× this on the same 2 cores",
        ),
    }

"""S10 memory per pending touch: what P scheduled touches (none of them due)
cost in the database, in the ``sopflow scheduler`` process and in the
``sopflow worker`` process.

Ours: P touches on a started 5-step nurture SOP (P/5 customers, one enrolment
each, step k due 1 + 10k days ahead plus up to 9 days), loaded set-based
(Postgres: one ``INSERT … SELECT generate_series``; SQLite: Core executemany).
(a) Database bytes per pending touch: Postgres ``pg_total_relation_size
('touches')`` (heap, TOAST and every index, after ``VACUUM ANALYZE``) ÷ P;
SQLite the pages of ``touches`` and its indexes in ``dbstat`` ÷ P.  (b) The
real processes on a private Redis: ``sopflow scheduler`` and ``sopflow
worker`` (default threads) are started once with nothing pending
(``SOPFLOW_SCHEDULER_INTERVAL`` 0.5 s); their ``VmRSS`` is read from /proc
every 0.25 s for ``--s10-settle`` seconds (a few ticks with nothing due) at P
= 0 and again after each size of ``--s10-pending`` has been loaded under
them; then both are started afresh with the largest P pending and read again
(a start-up that loaded the pending touches would show there).  The maximum
of each window is reported, so one sees whether RSS grows with P (the goal is
O(1): ≤ 150 MiB at 5M).  The worker figure in the table is bytes of worker
RSS growth per pending touch, (RSS at P − RSS at 0) ÷ P, counted as at least
one 4 KiB page, so its ratio to the peer is a lower bound.  ``--quick``: one
size, no fresh start, no peer.

Baseline (peer): naive Dramatiq — one delayed message per touch
(``send_with_options(delay=…)``, 1–40 days), a ``dramatiq`` worker with 2
processes and default settings (8 threads each, so each process prefetches
and holds up to 8,000 delayed messages unacked in memory).  Redis
``used_memory`` growth ÷ messages, and the workers' summed RSS growth ÷
messages held (RSS after the prefetch settled minus RSS idle; held = messages
no longer in the ``.DQ`` list).  §6 measured 385 B in Redis and 1.25–1.4 KiB
per held message in the worker.

Hardware limit: a bare table ``(id bigint primary key, due_at timestamptz,
status smallint)`` with a partial index on ``due_at`` where ``status = 0``
(SQLite: an integer rowid table, integer due times) holding P rows, measured
the same way (§5.3: ~100 B/row on Postgres).

Memory figures: ``seconds`` is how long the measurement took; ``count`` the
touches; ``rate`` touches per MiB (so ours ÷ baseline is the baseline's bytes
÷ ours); ``bytes_per`` carries the figure itself.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from bench.load import Context, api_client, figure, ok, open_app
from bench.observe import children, redis_used_memory, sample_rss
from bench.pending import add_touches, bytecode_cached, count_touches
from bench.servers import processes, redis_server, sopflow_env, wait_until

NAME = "S10"
ORDER = 60
MUST_BE_ZERO = ("dispatched_while_idle",)

STEPS = 5
MIB = 1024 * 1024
DEFINITION = {
    "kind": "nurture",
    "target": {"rule": {"tags": {"any_of": ["s10-nobody"]}}},
    "steps": [
        {
            "day": 1 + 10 * k,
            "at": "09:00",
            "actions": [
                {"type": "send", "channel": "log", "touchpoint": "private_chat", "text": f"step {k + 1}"}
            ],
        }
        for k in range(STEPS)
    ],
}


def add_arguments(ap: Any) -> None:
    g = ap.add_argument_group("S10 memory per pending touch")
    g.add_argument(
        "--s10-pending",
        type=int,
        nargs="+",
        default=[1_000_000],
        metavar="P",
        help="pending touches, ascending (quick: 20000; §6 asks 5000000 too)",
    )
    g.add_argument(
        "--s10-peer-messages", type=int, default=20_000, help="Dramatiq delayed messages (quick: no peer)"
    )
    g.add_argument("--s10-settle", type=float, default=5.0, help="seconds the processes run per size")


def mib(kib: int) -> float:
    return round(kib / 1024, 1)


def mem_figure(bytes_per: float, count: int, seconds: float, unit: str = "touches/MiB", **extra: Any) -> dict:
    fig = figure(seconds, count, unit, **extra)
    fig["rate"] = round(MIB / bytes_per, 1) if bytes_per > 0 else float("inf")
    fig["bytes_per"] = round(bytes_per, 1)
    return fig


def db_bytes(app: Any, tables: tuple[str, ...] = ("touches",)) -> int:
    """Bytes on disk of the tables and all their indexes."""
    if app.engine.dialect.name == "postgresql":
        ac = app.engine.execution_options(isolation_level="AUTOCOMMIT")
        with ac.connect() as conn:
            for table in tables:
                conn.exec_driver_sql(f"VACUUM ANALYZE {table}")
            return sum(
                conn.scalar(sa.text("SELECT pg_total_relation_size(CAST(:t AS regclass))"), {"t": t}) or 0
                for t in tables
            )
    with app.engine.connect() as conn:
        names = ",".join(f"'{t}'" for t in tables)
        return (
            conn.exec_driver_sql(
                "SELECT coalesce(sum(pgsize), 0) FROM dbstat WHERE name IN "
                f"(SELECT name FROM sqlite_schema WHERE tbl_name IN ({names}))"
            ).scalar()
            or 0
        )


def bare_table(app: Any, rows: int) -> tuple[int, float]:
    """The limit: (id, due_at, status) and a partial due index, ``rows`` rows; its bytes."""
    started = time.perf_counter()
    pg = app.engine.dialect.name == "postgresql"
    with app.engine.begin() as conn:
        conn.exec_driver_sql("DROP TABLE IF EXISTS s10_bare")
        if pg:
            conn.exec_driver_sql(
                "CREATE TABLE s10_bare (id bigint PRIMARY KEY, due_at timestamptz NOT NULL, "
                "status smallint NOT NULL)"
            )
            conn.execute(
                sa.text(
                    "INSERT INTO s10_bare SELECT g, now() + g * interval '1 second', 0 "
                    "FROM generate_series(1, :n) g"
                ),
                {"n": rows},
            )
        else:
            conn.exec_driver_sql(
                "CREATE TABLE s10_bare (id INTEGER PRIMARY KEY, due_at INTEGER NOT NULL, "
                "status INTEGER NOT NULL)"
            )
            conn.execute(
                sa.text(
                    "WITH RECURSIVE g(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM g WHERE i < :n) "
                    "INSERT INTO s10_bare SELECT i, unixepoch() + i, 0 FROM g"
                ),
                {"n": rows},
            )
        conn.exec_driver_sql("CREATE INDEX s10_bare_due ON s10_bare (due_at) WHERE status = 0")
    size = db_bytes(app, ("s10_bare",))
    with app.engine.begin() as conn:
        conn.exec_driver_sql("DROP TABLE s10_bare")
    return size, time.perf_counter() - started


class Running:
    """``sopflow scheduler`` + ``sopflow worker`` on the database and a Redis."""

    def __init__(self, url: str, redis_url: str) -> None:
        self.url, self.redis_url = url, redis_url

    def __enter__(self) -> Running:
        self.ctx = processes("sopflow-bench-s10-")
        procs = self.ctx.__enter__()
        try:
            env = bytecode_cached(
                sopflow_env(self.url, procs.logdir, redis_url=self.redis_url, scheduler_interval=0.5)
            )
            self.worker = procs.sopflow("worker", env)
            self.scheduler = procs.sopflow("scheduler", env)

            def started() -> bool:
                if not (self.worker.alive() and self.scheduler.alive()):
                    raise RuntimeError(f"a sopflow process exited early:\n{procs.logs()}")
                return "worker started" in self.worker.tail(20_000)

            wait_until(started, 120, "the sopflow worker to start")
        except BaseException:
            self.ctx.__exit__(None, None, None)
            raise
        return self

    def rss(self, settle: float) -> dict[str, int]:
        """Peak RSS (KiB) of both over ``settle`` seconds (a few scheduler ticks)."""
        return sample_rss({"scheduler": self.scheduler.pid, "worker": self.worker.pid}, settle)

    def __exit__(self, *exc: object) -> None:
        self.ctx.__exit__(None, None, None)


def dramatiq_peer(messages: int, ctx: Context) -> dict[str, Any]:
    """Naive Dramatiq: ``messages`` delayed messages (1–40 days), 2 worker processes,
    default settings (8 threads: 8,000 delayed messages prefetched per process)."""
    import random
    import shutil

    import redis

    from bench.peers.dramatiq_peer import DAY_MS, QUEUE, Producer, workers

    out = Path(tempfile.mkdtemp(prefix="sopflow-bench-s10-peer-"))
    try:
        with redis_server() as redis_url, workers(redis_url, out, processes=2, threads=8) as master:
            client = redis.Redis.from_url(redis_url)
            pids = {str(p): p for p in children(master.pid)}
            time.sleep(1.0)
            idle = sample_rss(pids, 1.0)
            used0 = redis_used_memory(redis_url)
            producer = Producer(redis_url)
            rng = random.Random(10)
            t0 = time.perf_counter()
            try:
                for i in range(messages):
                    producer.send(i, int((1 + 39 * rng.random()) * DAY_MS))
            finally:
                producer.close()
            enqueue_s = time.perf_counter() - t0
            used1 = redis_used_memory(redis_url)
            held_max = min(messages, 2 * 8 * 1000)

            def dq_len() -> int:
                return int(client.llen(f"dramatiq:{QUEUE}.DQ"))

            wait_until(lambda: dq_len() <= messages - held_max, 60, "the workers to prefetch", every=0.2)
            time.sleep(1.0)
            held = messages - dq_len()
            peak = sample_rss(pids, 1.5)
            client.close()
    finally:
        shutil.rmtree(out, ignore_errors=True)
    idle_kib, held_kib = sum(idle.values()), sum(peak.values())
    ctx.log(
        f"S10 peer: {messages:,} delayed messages enqueued in {enqueue_s:.2f} s; Redis +{used1 - used0:,} B; "
        f"{len(pids)} workers {mib(idle_kib)} → {mib(held_kib)} MiB holding {held:,}"
    )
    return {
        "messages": messages,
        "enqueue_s": enqueue_s,
        "redis_bytes": used1 - used0,
        "held": held,
        "rss_idle_kib": idle_kib,
        "rss_held_kib": held_kib,
    }


def run(ctx: Context) -> dict[str, Any]:
    a = ctx.args
    sizes = sorted({20_000} if ctx.quick else set(a.s10_pending))
    settle = 1.5 if ctx.quick else a.s10_settle
    peer_n = a.s10_peer_messages
    restart: dict[str, Any] = {}
    deadline = ctx.deadline("S10")
    db = ctx.database("s10")
    per_size: list[dict[str, Any]] = []
    counters: dict[str, int] = {}
    try:
        app = open_app(db.url)
        with api_client(app) as api:
            sop = ok(api.post("/api/v1/sops", json={"name": "pending", "definition": DEFINITION}), 201)
            ok(api.post(f"/api/v1/sops/{sop['id']}/start"))
            tenant_id = api.tenant_id
        sop_id = sop["id"]
        have = 0
        app.dispose()
        with redis_server() as redis_url:
            t0 = time.perf_counter()
            with Running(db.url, redis_url) as running:
                ctx.log(f"S10: scheduler and worker started in {time.perf_counter() - t0:.1f} s")
                for p in [0, *sizes]:
                    if p > have:
                        t0 = time.perf_counter()
                        add_touches(app, tenant_id, sop_id, (p - have) // STEPS, STEPS)
                        have = count_touches(app)
                        ctx.log(f"S10: {have:,} pending touches loaded in {time.perf_counter() - t0:.1f} s")
                    t0 = time.perf_counter()
                    size = db_bytes(app) if have else 0
                    db_s = time.perf_counter() - t0
                    app.dispose()
                    t0 = time.perf_counter()
                    rss = running.rss(settle)
                    per_size.append(
                        {
                            "pending": have,
                            "db_bytes": size,
                            "db_s": db_s,
                            "proc_s": time.perf_counter() - t0,
                            **{f"{k}_kib": v for k, v in rss.items()},
                        }
                    )
                    ctx.log(
                        f"S10 P={have:,}: touches {size / max(have, 1):.0f} B/touch; scheduler "
                        f"{mib(rss['scheduler'])} MiB, worker {mib(rss['worker'])} MiB"
                    )
                    deadline.check()
            if not ctx.quick:  # a fresh start with P already pending (a start-up that loads them shows)
                t0 = time.perf_counter()
                with Running(db.url, redis_url) as running:
                    rss = running.rss(settle)
                restart = {
                    "pending": have,
                    "proc_s": time.perf_counter() - t0,
                    **{f"{k}_kib": v for k, v in rss.items()},
                }
                ctx.log(
                    f"S10 restarted at P={have:,}: scheduler {mib(rss['scheduler'])} MiB, "
                    f"worker {mib(rss['worker'])} MiB"
                )
        counters["dispatched_while_idle"] = count_touches(app) - count_touches(app, status="scheduled")
        largest = per_size[-1]["pending"]
        limit_bytes, limit_s = bare_table(app, largest)
        app.dispose()
        deadline.check()
        peer = None if ctx.quick else dramatiq_peer(peer_n, ctx)
    finally:
        db.close()

    top, zero = per_size[-1], per_size[0]
    p = top["pending"]
    worker_growth = max(top["worker_kib"], restart.get("worker_kib", 0)) - zero["worker_kib"]
    sched_growth = max(top["scheduler_kib"], restart.get("scheduler_kib", 0)) - zero["scheduler_kib"]
    at_each = "; ".join(
        f"P={s['pending']:,}: worker {mib(s['worker_kib'])} MiB, scheduler {mib(s['scheduler_kib'])} MiB"
        for s in per_size
    )
    if restart:
        at_each += (
            f"; fresh start at P={restart['pending']:,}: worker {mib(restart['worker_kib'])} MiB, "
            f"scheduler {mib(restart['scheduler_kib'])} MiB"
        )
    redis_base = rss_base = None
    if peer:
        redis_per = peer["redis_bytes"] / peer["messages"]
        rss_per = max(peer["rss_held_kib"] - peer["rss_idle_kib"], 0) * 1024 / max(peer["held"], 1)
        redis_base = mem_figure(
            redis_per,
            peer["messages"],
            peer["enqueue_s"],
            unit="messages/MiB",
            note=f"{redis_per:.0f} B/message in Redis",
            what=f"naive Dramatiq: {peer['messages']:,} delayed messages, Redis `used_memory` growth",
        )
        rss_base = mem_figure(
            rss_per,
            peer["held"],
            peer["enqueue_s"],
            unit="messages/MiB",
            note=(
                f"{rss_per:,.0f} B/held message: 2 workers {mib(peer['rss_idle_kib'])} → "
                f"{mib(peer['rss_held_kib'])} MiB holding {peer['held']:,}"
            ),
            what="naive Dramatiq, 2 processes × 8 threads, default prefetch",
        )
    engine = "Postgres `pg_total_relation_size`" if ctx.backend == "postgres" else "SQLite `dbstat` pages"
    return {
        "scenario": "S10",
        "title": "memory per pending touch",
        "rows": [
            {
                "id": "S10",
                "what": "stored bytes per pending touch (table + indexes)",
                "size": f"{p:,} pending touches",
                "ours": mem_figure(
                    top["db_bytes"] / p,
                    p,
                    top["db_s"],
                    note=f"{top['db_bytes'] / p:.0f} B/touch ({engine})",
                    db_bytes=top["db_bytes"],
                ),
                "baseline": redis_base,
                "limit": mem_figure(
                    limit_bytes / p,
                    p,
                    limit_s,
                    note=f"{limit_bytes / p:.0f} B/row",
                    what="bare (id, due_at, status) table + partial due index",
                ),
                "bound": (
                    "the touches row (17 columns, a JSON outcome) and its primary key + 4 indexes "
                    "(disk, not RAM)"
                ),
            },
            {
                "id": "S10",
                "what": "worker RSS growth per pending touch (`sopflow worker`, nothing due)",
                "size": f"{p:,} pending touches",
                "ours": mem_figure(
                    max(worker_growth, 4) * 1024 / p,
                    p,
                    top["proc_s"],
                    note=f"{at_each}; growth {worker_growth:+,} KiB (scheduler {sched_growth:+,} KiB)",
                    rss=[{k: v for k, v in s.items()} for s in per_size],
                ),
                "baseline": rss_base,
                "limit": None,
                "bound": (
                    "nothing per pending touch: pending touches stay in the database; a worker holds only "
                    "the claimed batches it is delivering (RSS is the imported code and the connection pool)"
                ),
            },
        ],
        "counters": counters,
        "sizes": {"pending": [s["pending"] for s in per_size], "peer_messages": peer_n},
        "rss": per_size,
        "rss_fresh_start": restart,
        "peer": peer,
    }

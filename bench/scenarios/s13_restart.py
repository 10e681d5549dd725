"""S13 restart and recovery: real ``sopflow scheduler`` and ``sopflow worker``
processes (Redis broker, system clock) over P far-future pending touches and K
touches due now; then both are killed with SIGKILL mid-delivery and started
again.

Setup: a started SOP with 5 webhook steps (``"idempotent": true``) pointing at
a receiver on 127.0.0.1 that records every call by its ``Idempotency-Key``
(``touch:<id>``); P/5 customers with 5 touches each due 1–49 days ahead, and K
customers whose first touch is due now, loaded set-based (Postgres: one
``INSERT … SELECT generate_series``; SQLite: Core executemany).  The scheduler
ticks at its default interval (1 s); the worker runs its default threads.

Ours, in one run: (1) cold start: the wall time from starting both processes
to the receiver's first call, and to all K delivered (every key received and
every row ``sent``); (2) K more touches due now are added while the processes
run; once a third of them have been delivered both processes get SIGKILL; the
touch statuses at that moment are read (``claimed``/``sending`` = in flight);
K/10 (at least 10) more touches come due "during the outage"; both processes
are started again.  The figure is the time from the restart to the first call
of an outage touch — the restart itself: start-up, first tick, claim, deliver.
The note adds the first call of any touch, the last in-flight touch delivered,
and everything delivered.  The in-flight touches come back only when their
claim lease runs out (``SOPFLOW_CLAIM_LEASE_SECONDS``, set to ``--s13-lease``;
the engine's default is 300 s) — their deliver messages sat unacknowledged in
the killed worker — so that figure is bounded by the lease, not by the restart.

Settings that shape the figures: ``SOPFLOW_MAX_IN_FLIGHT`` stays at the
engine's default (2,000) unless ``--s13-max-in-flight`` is given; touches still
claimed by the killed processes count as in flight until their lease runs out,
so when they reach that cap the restarted scheduler claims nothing new before
the leases expire (measured: 200 in flight at a cap of 200 held the first
delivery after the restart for 23 s with a 30 s lease).  A lease must outlast
a whole delivery batch (``SOPFLOW_DELIVER_BATCH`` touches are marked
``sending`` together, then called one by one; a slow batch renews the lease of
the rest as it goes).

Baseline: none measured here.  Dramatiq's Redis broker leaves the messages a
killed worker had prefetched in its unacked set until its heartbeat times out
(60 s) and a later command happens to run the queue maintenance (§1.2, issue
#527); that is the comparison for the in-flight figure.  Limit: none.

Correctness, from the receiver (channel calls by key) and the database
(statuses, ``attempts``): ``lost`` = due-now touches not delivered or not
``sent`` at the end; ``duplicates`` = touches called more than once although
they were not in flight at the kill and were claimed only once
(``touches.attempts``); ``early_fires`` = calls for a far-future touch.  All
must be 0.  A touch may be offered again with the same key when it was claimed
again after its lease ran out — in flight at the kill (``resent_in_flight``)
or, on an overloaded machine, a lease that expired while the touch waited in
the queue (``resent_lease_expired``); the receiver de-duplicates those by key.
``review`` counts touches left for a human.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa

from bench.load import Context, api_client, figure, ok, open_app
from bench.observe import Receiver
from bench.pending import add_touches, bytecode_cached
from bench.servers import processes, redis_server, sopflow_env, wait_until

NAME = "S13"
ORDER = 70
MUST_BE_ZERO = ("lost", "duplicates", "early_fires")

STEPS = 5


def definition(url: str) -> dict[str, Any]:
    return {
        "kind": "new_customer",
        "target": {},
        "steps": [
            {"delay": f"{1 + 10 * k}d", "actions": [{"type": "webhook", "url": url, "idempotent": True}]}
            for k in range(STEPS)
        ],
    }


def add_arguments(ap: Any) -> None:
    g = ap.add_argument_group("S13 restart and recovery")
    g.add_argument(
        "--s13-pending", type=int, default=1_000_000, help="far-future touches (quick: 2000; §6: 5000000)"
    )
    g.add_argument("--s13-due", type=int, default=1_000, help="touches due now, per phase (quick: 40)")
    g.add_argument(
        "--s13-lease", type=int, default=60, help="SOPFLOW_CLAIM_LEASE_SECONDS for the run (quick: 8)"
    )
    g.add_argument(
        "--s13-max-in-flight",
        type=int,
        default=None,
        help="SOPFLOW_MAX_IN_FLIGHT (default: the engine's, 2,000)",
    )


def touch_id(key: str) -> int:
    return int(key.split(":")[1])


def due_now_ids(app: Any, known: set[int]) -> set[int]:
    """Ids of the touches due before an hour from now (the far ones are days ahead), minus ``known``."""
    from sopflow.models import Touch

    t = Touch.__table__
    soon = datetime.now(UTC) + timedelta(hours=1)
    with app.engine.connect() as conn:
        return set(conn.scalars(sa.select(t.c.id).where(t.c.due_at <= soon))) - known


def statuses(app: Any, ids: set[int], column: str = "status") -> dict[int, Any]:
    """touch id → its ``status`` (or ``attempts``: how many times it was claimed)."""
    from sopflow.models import Touch

    t = Touch.__table__
    out: dict[int, Any] = {}
    with app.engine.connect() as conn:
        id_list = sorted(ids)
        for i in range(0, len(id_list), 5000):
            out.update(
                conn.execute(sa.select(t.c.id, t.c[column]).where(t.c.id.in_(id_list[i : i + 5000]))).all()
            )
    return out


def run(ctx: Context) -> dict[str, Any]:
    a = ctx.args
    p = 2_000 if ctx.quick else a.s13_pending
    k = 40 if ctx.quick else a.s13_due
    lease = 8 if ctx.quick else a.s13_lease
    deadline = ctx.deadline("S13")
    db = ctx.database("s13")
    counters: dict[str, int] = {}
    try:
        with Receiver() as rx, redis_server() as redis_url, processes("sopflow-bench-s13-") as procs:
            app = open_app(db.url)
            with api_client(app) as api:
                sop = ok(
                    api.post("/api/v1/sops", json={"name": "restart", "definition": definition(rx.url)}), 201
                )
                ok(api.post(f"/api/v1/sops/{sop['id']}/start"))
                tenant_id = api.tenant_id
            sop_id = sop["id"]
            t0 = time.perf_counter()
            add_touches(app, tenant_id, sop_id, p // STEPS, STEPS, tag="far")
            ctx.log(f"S13: {p:,} far-future touches loaded in {time.perf_counter() - t0:.1f} s")
            add_touches(app, tenant_id, sop_id, k, 1, due="now", tag="now")
            first = due_now_ids(app, set())
            assert len(first) == k, (len(first), k)
            app.dispose()

            env = bytecode_cached(
                sopflow_env(
                    db.url,
                    procs.logdir,
                    redis_url=redis_url,
                    claim_lease_seconds=lease,
                    max_in_flight=a.s13_max_in_flight,
                )
            )
            budget = 120 + lease + k / 50

            def delivered(ids: set[int]) -> set[int]:
                return {touch_id(key) for key in rx.keys().elements()} & ids

            def all_sent(ids: set[int]) -> bool:
                if len(delivered(ids)) < len(ids):
                    return False
                return all(s == "sent" for s in statuses(app, ids).values())

            def alive(*ps: Any) -> None:
                for proc in ps:
                    if not proc.alive():
                        raise RuntimeError(f"{proc.name} exited early:\n{procs.logs()}")

            # (1) cold start
            t_start = time.perf_counter()
            worker = procs.sopflow("worker", env)
            scheduler = procs.sopflow("scheduler", env)

            def any_call() -> bool:
                alive(worker, scheduler)
                return rx.first_after(t_start) is not None

            wait_until(any_call, budget, "the first delivery", every=0.01)
            first_call = rx.first_after(t_start) - t_start
            wait_until(lambda: all_sent(first), budget, f"all {k:,} delivered", every=0.1)
            cold_all = time.perf_counter() - t_start
            ctx.log(
                f"S13 cold start: first delivery after {first_call:.2f} s, all {k:,} after {cold_all:.2f} s"
            )
            deadline.check()

            # (2) more due now, SIGKILL both a third of the way, start again
            add_touches(app, tenant_id, sop_id, k, 1, due="now", tag="now2")
            second = due_now_ids(app, first)
            assert len(second) == k, (len(second), k)
            wait_until(
                lambda: (alive(worker, scheduler), len(delivered(second)) >= k // 3)[1],
                budget,
                "a third of the second batch",
                every=0.005,
            )
            worker.kill9()
            scheduler.kill9()
            at_kill = statuses(app, second)
            in_flight = {i for i, s in at_kill.items() if s in ("claimed", "sending")}
            calls_at_kill = len(rx.snapshot())
            done_at_kill = len(delivered(second))
            ctx.log(
                f"S13 killed: {done_at_kill:,}/{k:,} delivered, {len(in_flight):,} in flight, "
                f"{sum(1 for s in at_kill.values() if s == 'scheduled'):,} still scheduled"
            )
            # touches that came due while both were down: the restart itself, not the leases
            outage_n = max(10, k // 10)
            add_touches(app, tenant_id, sop_id, outage_n, 1, due="now", tag="outage")
            third = due_now_ids(app, first | second)
            assert len(third) == outage_n, (len(third), outage_n)
            t_restart = time.perf_counter()
            worker = procs.sopflow("worker", env, name="worker-restarted")
            scheduler = procs.sopflow("scheduler", env, name="scheduler-restarted")

            def first_of(ids: set[int]) -> float | None:
                return min(
                    (at for key, at in rx.snapshot() if at >= t_restart and touch_id(key) in ids),
                    default=None,
                )

            def new_delivered() -> bool:
                alive(worker, scheduler)
                return first_of(third) is not None

            wait_until(new_delivered, budget, "the first delivery after the restart", every=0.01)
            restart_first = first_of(third) - t_restart
            restart_any = rx.first_after(t_restart) - t_restart
            wait_until(lambda: all_sent(second | third), budget, "every touch after the restart", every=0.1)
            restart_all = time.perf_counter() - t_restart
            calls = rx.snapshot()
            flight_done = [
                at for key, at in calls[calls_at_kill:] if touch_id(key) in in_flight and at >= t_restart
            ]
            restart_flight = (max(flight_done) - t_restart) if flight_done else 0.0
            ctx.log(
                f"S13 restart: first new touch delivered after {restart_first:.2f} s "
                f"(any: {restart_any:.2f} s), all after {restart_all:.2f} s, in-flight recovered after "
                f"{restart_flight:.2f} s (lease {lease} s)"
            )
            time.sleep(1.0 if ctx.quick else 2.0)  # late duplicates would show here
            worker.stop()
            scheduler.stop()
            keys = rx.keys()
            due = first | second | third
            final = statuses(app, due)
            claims = statuses(app, due, "attempts")
            called = {touch_id(key): n for key, n in keys.items()}
            again = {i for i, n in called.items() if n > 1}
            counters = {
                "lost": sum(1 for i in due if called.get(i, 0) == 0 or final.get(i) != "sent"),
                "duplicates": sum(1 for i in again if i not in in_flight and claims.get(i, 0) <= 1),
                "early_fires": sum(1 for i in called if i not in due),
                "resent_in_flight": len(again & in_flight),
                "resent_lease_expired": sum(1 for i in again - in_flight if claims.get(i, 0) > 1),
                "in_flight_at_kill": len(in_flight),
                "review": sum(1 for s in final.values() if s == "review"),
            }
            for i in sorted(again - in_flight)[:5]:
                at = [round(t - t_start, 3) for key, t in rx.snapshot() if touch_id(key) == i]
                batch = "first" if i in first else "second" if i in second else "far"
                ctx.log(
                    f"S13 called again: touch {i} ({batch} batch, {at_kill.get(i)} at the kill, claimed "
                    f"{claims.get(i)}×) called at {at} s (kill at {t_restart - t_start:.3f} s)"
                )
            app.dispose()
    finally:
        db.close()

    engine = "Postgres" if ctx.backend == "postgres" else "SQLite"
    return {
        "scenario": "S13",
        "title": "restart and recovery",
        "rows": [
            {
                "id": "S13",
                "what": "cold start → all due touches delivered (scheduler + worker processes, webhook)",
                "size": f"{p:,} pending + {k:,} due now",
                "ours": figure(
                    cold_all,
                    k,
                    "touches/s",
                    [cold_all],
                    first_delivery_s=round(first_call, 3),
                    note=f"first delivery {first_call:.2f} s after the start",
                ),
                "baseline": None,
                "limit": None,
                "bound": f"process start-up (imports, app, {engine} and Redis connections), the 1 s tick",
            },
            {
                "id": "S13",
                "what": "kill -9 both mid-delivery → restart → first new touch delivered",
                "size": f"{p:,} pending + {k:,} due now + {outage_n:,} due during the outage",
                "ours": figure(
                    restart_first,
                    60,
                    "restarts/min",
                    [restart_first],
                    first_any_s=round(restart_any, 3),
                    all_s=round(restart_all, 3),
                    in_flight_s=round(restart_flight, 3),
                    note=(
                        f"first call of any touch {restart_any:.2f} s; the {len(in_flight):,} in flight "
                        f"at the kill after {restart_flight:.2f} s (claim lease {lease} s); all delivered "
                        f"after {restart_all:.2f} s"
                    ),
                ),
                "baseline": None,
                "limit": None,
                "bound": (
                    "process start-up and the first tick; touches claimed at the kill wait for their claim "
                    "lease (default 300 s), like Dramatiq's prefetched messages wait ≥ 60 s for the heartbeat"
                ),
            },
        ],
        "counters": counters,
        "sizes": {"pending": p, "due": k, "outage": outage_n, "lease_s": lease},
    }

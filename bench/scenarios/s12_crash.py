"""S12 crash safety: N touches due now, a real ``sopflow scheduler`` and
``sopflow worker`` (Redis broker, a private ``redis-server``) delivering them,
and ``kill -9`` of the worker, the scheduler or both at R random points during
dispatch, each restarted at once.

The touches belong to two started SOPs whose only step is a ``webhook`` action
to a receiver on 127.0.0.1 in the bench process (``--s12-channel-ms`` per call),
half of them each, interleaved: one declares the receiver idempotent (it
de-duplicates by Idempotency-Key, so a touch in flight at the kill may be sent
again with the same key), the other not (such a touch is never re-sent: it goes
to ``review``).  At the end, per touch (= per customer and step): raw calls and
distinct keys at the receiver, and the touch's status.

Ours: the engine's own processes as deployed (``sopflow scheduler``,
``sopflow worker --threads 8``) with ``SOPFLOW_CLAIM_LEASE_SECONDS=5`` (a killed
worker's touches are claimed again after 5 s rather than the default 300 s),
``SOPFLOW_SCHEDULER_INTERVAL=0.2``, ``SOPFLOW_DELIVER_BATCH=8`` (8 touches per
deliver message, so the 8 threads share the work) and ``SOPFLOW_MAX_IN_FLIGHT=24``
(so no claimed touch waits in the queue longer than its lease — a touch whose
lease runs out while it waits is claimed again: an idempotent re-send, or
``review``, without any crash).  ``--quick``: 150 touches, 2 kills.

The side figure is the throughput of the whole run, kills and recoveries
included: N ÷ (first delivery → every touch final): the kills and the leases
they leave behind, then the receiver's simulated call time.  (Until this suite
found it, the webhook action built a new HTTP client per call — an SSL context
with the CA bundle loaded, ~65 ms of CPU of the ~70 ms per touch; it now keeps
one pooled client per process.)  No peer and no limit are
measured: the reference's peers are Mautic (recipients got one mail up to 6
times, #1737) and Dramatiq's delayed-message promotion (duplicates, #431); the
limit is the idempotency-key upsert.

Correctness counters (must be 0): lost (a touch with no call at the receiver
that is not in ``review``), unfinished (not in a
final status when the bounded wait ends), idempotent_duplicates_after_dedup (a
touch that reached the idempotent receiver under more than one key),
non_idempotent_duplicate_calls (a second call for one touch of the
non-idempotent SOP).  Reported: idempotent_raw_duplicate_calls (re-sends the
receiver de-duplicated), review (non-idempotent touches in flight at a kill,
left for a human), kills.
"""

from __future__ import annotations

import random
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa

from bench.load import Context, bulk_insert, figure, insert_customers
from bench.observe import Receiver

NAME = "S12"
ORDER = 120
MUST_BE_ZERO = (
    "lost",
    "unfinished",
    "idempotent_duplicates_after_dedup",
    "non_idempotent_duplicate_calls",
)
FINAL = ("sent", "review", "failed", "skipped", "cancelled", "pending")
LEASE_SECONDS = 5
SETTINGS = {"scheduler_interval": 0.2, "max_in_flight": 24, "deliver_batch": 8}


def add_arguments(ap: Any) -> None:
    g = ap.add_argument_group("S12 kill -9 crash safety")
    g.add_argument("--s12-touches", type=int, default=2_000, help="touches due at the start (quick: 150)")
    g.add_argument("--s12-kills", type=int, default=6, help="kill -9 points during dispatch (quick: 2)")
    g.add_argument("--s12-channel-ms", type=float, default=10.0, help="receiver time per call, ms")
    g.add_argument("--s12-seed", type=int, default=12, help="random seed of the kill points and targets")


def seed(url: str, hook_idem: str, hook_once: str, n: int) -> tuple[int, int]:
    """Two started SOPs (webhook step, idempotent or not) and ``n`` enrolments whose
    touch is due one second ago, alternating between the SOPs.  Returns the SOP ids."""
    from sopflow.clock import SystemClock
    from sopflow.engine.sops.manage import create_sop, start_sop
    from sopflow.models import Enrollment, SopVersion, Touch
    from sopflow_sdk.testing.harness import make_test_app, new_tenant

    app = make_test_app(url, clock=SystemClock(), env={"SOPFLOW_CLOCK": "system"})
    try:
        tenant_id, _ = new_tenant(app, "s12")
        sops = []
        with app.tx() as s:
            for name, hook, idem in (("idempotent", hook_idem, True), ("once", hook_once, False)):
                definition = {
                    "kind": "new_customer",
                    "target": {},
                    "steps": [
                        {"delay": "1m", "actions": [{"type": "webhook", "url": hook, "idempotent": idem}]}
                    ],
                }
                sop = create_sop(s, app, tenant_id, f"crash {name}", definition, app.now())
                start_sop(s, sop, app.now())
                sops.append(sop.id)
        now = datetime.now(UTC).replace(microsecond=0)
        due = now - timedelta(seconds=1)
        first = insert_customers(
            app,
            tenant_id,
            ({"display_name": f"c{i}", "timezone": "Asia/Shanghai"} for i in range(n)),
            now=now,
        )
        with app.engine.begin() as conn:
            versions = {
                sop_id: conn.scalar(sa.select(SopVersion.id).where(SopVersion.sop_id == sop_id))
                for sop_id in sops
            }
            enrolments, touches = [], []
            for i in range(n):
                sop_id = sops[i % 2]
                enrolments.append(
                    {
                        "id": first + i,
                        "tenant_id": tenant_id,
                        "sop_id": sop_id,
                        "sop_version_id": versions[sop_id],
                        "customer_id": first + i,
                        "entry_seq": 0,
                        "status": "active",
                        "timezone": "Asia/Shanghai",
                        "enrolled_at": due,
                        "depth": 0,
                        "rearmed": False,
                    }
                )
                touches.append(
                    {
                        "tenant_id": tenant_id,
                        "sop_id": sop_id,
                        "enrollment_id": first + i,
                        "customer_id": first + i,
                        "step_index": 0,
                        "status": "scheduled",
                        "planned_at": due,
                        "due_at": due,
                        "attempts": 0,
                        "deferrals": 0,
                        "outcome": {},
                    }
                )
            bulk_insert(conn, Enrollment.__table__, enrolments)
            bulk_insert(conn, Touch.__table__, touches)
    finally:
        app.dispose()
    return sops[0], sops[1]


class Watch:
    """Reads touch statuses on its own plain engine (no write lock on SQLite)."""

    def __init__(self, url: str) -> None:
        self.engine = sa.create_engine(url)

    def counts(self) -> dict[str, int]:
        from sopflow.models import Touch

        with self.engine.connect() as conn:
            return dict(conn.execute(sa.select(Touch.status, sa.func.count()).group_by(Touch.status)).all())

    def final(self) -> int:
        return sum(v for k, v in self.counts().items() if k in FINAL)

    def touches(self) -> list[tuple[int, int, int, str]]:
        from sopflow.models import Touch

        with self.engine.connect() as conn:
            return list(
                conn.execute(sa.select(Touch.id, Touch.sop_id, Touch.customer_id, Touch.status)).tuples()
            )

    def dispose(self) -> None:
        self.engine.dispose()


def wait_for(predicate: Any, timeout: float, what: str, procs: Any) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return
        time.sleep(0.05)
    raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}; logs:\n{procs.logs()}")


def run(ctx: Context) -> dict[str, Any]:
    from bench.servers import processes, redis_server, sopflow_env

    args = ctx.args
    n = 150 if ctx.quick else args.s12_touches
    kills = 2 if ctx.quick else args.s12_kills
    rng = random.Random(args.s12_seed)
    span = range(max(1, n // 20), max(2, n * 9 // 10))
    kills = min(kills, len(span))
    points = sorted(rng.sample(span, kills))
    targets = ["worker" if i == 0 else rng.choice(("worker", "scheduler", "both")) for i in range(kills)]
    lease = LEASE_SECONDS
    settings = {**SETTINGS, "claim_lease_seconds": lease}
    deadline = ctx.deadline("S12")
    wait_cap = 60.0 if ctx.quick else 300.0
    db = ctx.database("s12")
    done_kills: list[tuple[str, int]] = []
    try:
        with (
            Receiver(args.s12_channel_ms / 1000) as receiver,
            redis_server() as redis_url,
            processes("sopflow-bench-s12-") as procs,
        ):
            env = sopflow_env(db.url, procs.logdir, redis_url=redis_url, **settings)
            live = {  # started first: their imports overlap the seeding (one transaction)
                "worker": procs.sopflow("worker", env, "--threads", "8", name="worker-0"),
                "scheduler": procs.sopflow("scheduler", env, name="scheduler-0"),
            }
            t_start = time.perf_counter()
            idem_sop, once_sop = seed(db.url, receiver.url_for("idempotent"), receiver.url_for("once"), n)
            watch = Watch(db.url)
            ctx.log(f"S12: {n:,} touches due, kills at {points} final touches: {targets}")
            try:
                for k, (point, target) in enumerate(zip(points, targets, strict=True), 1):
                    wait_for(lambda p=point: watch.final() >= p, wait_cap, f"{point} final touches", procs)
                    time.sleep(rng.uniform(0, 0.1))
                    now_final = watch.final()
                    if now_final >= n:
                        ctx.log(f"S12: dispatch finished before kill {k}")
                        break
                    for name in ("worker", "scheduler") if target == "both" else (target,):
                        live[name].kill9()
                        args_ = ("--threads", "8") if name == "worker" else ()
                        live[name] = procs.sopflow(name, env, *args_, name=f"{name}-{k}")
                    done_kills.append((target, now_final))
                    ctx.log(f"S12: kill {k}: {target} at {now_final} final touches; restarted")
                    deadline.check()
                wait_for(lambda: watch.final() >= n, wait_cap + 2 * lease, "every touch final", procs)
                t_end = time.perf_counter()
                time.sleep(0.5)  # a late second call would still be counted
            except BaseException:
                ctx.log(f"S12 statuses {watch.counts()}")
                raise
            rows = watch.touches()
            statuses = watch.counts()
            watch.dispose()
            calls = dict(receiver.keys())
            first_at = min((at for _, at in receiver.snapshot()), default=t_start)
    finally:
        db.close()

    by_touch_calls = Counter()
    keys_per_touch: dict[int, set[str]] = {}
    for key, count in calls.items():
        parts = key.split(":")
        if len(parts) >= 2 and parts[0] == "touch" and parts[1].isdigit():
            tid = int(parts[1])
            by_touch_calls[tid] += count
            keys_per_touch.setdefault(tid, set()).add(key)
    lost = unfinished = idem_raw = idem_after = once_dups = review = review_no_call = 0
    for tid, sop_id, _customer, status in rows:
        got = by_touch_calls.get(tid, 0)
        if status not in FINAL:
            unfinished += 1
        if got == 0 and status != "review":
            lost += 1
        if status == "review":
            review += 1
            review_no_call += got == 0
        if sop_id == idem_sop:
            idem_raw += max(0, got - 1)
            idem_after += max(0, len(keys_per_touch.get(tid, ())) - 1)
        elif sop_id == once_sop:
            once_dups += max(0, got - 1)
    seconds = t_end - min(first_at, t_end)
    counters = {
        "lost": lost,
        "unfinished": unfinished,
        "idempotent_duplicates_after_dedup": idem_after,
        "non_idempotent_duplicate_calls": once_dups,
        "idempotent_raw_duplicate_calls": idem_raw,
        "review": review,
        "review_without_call": review_no_call,
        "kills": len(done_kills),
        "sent": statuses.get("sent", 0),
    }
    ctx.log(f"S12: {counters}")
    kinds = Counter(t for t, _ in done_kills)
    kill_text = ", ".join(f"{v} {k}" for k, v in sorted(kinds.items())) or "none"
    return {
        "scenario": "S12",
        "title": "kill -9 crash safety",
        "rows": [
            {
                "id": "S12",
                "what": "kill -9 mid-dispatch, restart (scheduler + worker, Redis broker, webhook channel)",
                "size": f"{n:,} touches due, {len(done_kills)} kills ({kill_text}), "
                f"{args.s12_channel_ms:g} ms per call",
                "ours": figure(
                    seconds,
                    n,
                    "touches/s",
                    kills=done_kills,
                    note=(f"0 lost of {n:,}" if not lost else f"{lost} LOST of {n:,}")
                    + f"; idempotent: {idem_raw} re-sent with the same key, de-duplicated; "
                    f"non-idempotent: {once_dups} duplicate calls, {review} to review",
                ),
                "baseline": None,
                "limit": None,
                "bound": (
                    f"each worker kill: its claimed touches wait for the lease ({lease} s here, "
                    "SOPFLOW_CLAIM_LEASE_SECONDS) and a process restart (~2 s of imports); between kills "
                    "the receiver's call time, one call at a time per worker thread for the non-idempotent "
                    "receiver"
                ),
            }
        ],
        "counters": counters,
        "sizes": {"touches": n, "kills": kills, "channel_ms": args.s12_channel_ms, **settings},
    }

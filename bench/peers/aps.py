"""APScheduler 3.x as a peer: a ``BackgroundScheduler`` with ``SQLAlchemyJobStore``
on a given database URL and its default executor (a pool of 10 threads), in this
process; ``n`` date-trigger jobs due at one instant.  The job records
``(key, wall time)`` in a list here."""

from __future__ import annotations

import logging
import threading
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from bench.peers.stats import first_runs, lateness

_RECORDS: list[tuple[int, float]] = []
_LOCK = threading.Lock()
JOB = "bench.peers.aps:record"  # a textual reference: jobs are pickled into the store


def record(key: int) -> None:
    at = time.time()
    with _LOCK:
        _RECORDS.append((key, at))


def apscheduler_burst(
    n: int,
    db_url: str,
    due_in_s: float | None = None,
    misfire_grace_time: float | None = None,
    threads: int = 10,
    wait_s: float | None = None,
    tablename: str = "apscheduler_jobs",
) -> dict[str, Any]:
    """``n`` jobs added to a paused scheduler (one INSERT and commit each), all due
    at one instant after the adds are over (estimated from 20 timed adds after a first one, or
    ``due_in_s``); then resumed.  Lateness from the due instant; ``rate`` is n ÷
    (last − first run), ``rate_from_due`` n ÷ (last run − due instant).

    ``misfire_grace_time=None`` runs every job however late (so lateness is
    measured); APScheduler's default is 1 s, with which a job more than 1 s late
    is skipped — pass 1 to see that: skipped jobs are counted in ``missed`` and
    ``lost``.  The wait is bounded by ``wait_s`` after the due instant (default
    30 s + n/200 s)."""
    from apscheduler.events import EVENT_JOB_ERROR, EVENT_JOB_MISSED
    from apscheduler.executors.pool import ThreadPoolExecutor
    from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
    from apscheduler.schedulers.background import BackgroundScheduler

    with _LOCK:
        _RECORDS.clear()
    missed: list[str] = []
    errors: list[str] = []
    store = SQLAlchemyJobStore(url=db_url, tablename=tablename)
    scheduler = BackgroundScheduler(
        jobstores={"default": store},
        executors={"default": ThreadPoolExecutor(threads)},
        job_defaults={"misfire_grace_time": misfire_grace_time},
        timezone=UTC,
    )

    def listen(event: Any) -> None:
        (missed if event.code == EVENT_JOB_MISSED else errors).append(event.job_id)

    scheduler.add_listener(listen, EVENT_JOB_MISSED | EVENT_JOB_ERROR)
    quiet = logging.getLogger("apscheduler")
    level = quiet.level
    quiet.setLevel(logging.ERROR)  # one "was missed by" warning per skipped job otherwise
    scheduler.start(paused=True)
    try:
        scheduler.remove_all_jobs()
        if due_in_s is None:
            k = min(20, max(1, n))
            far = datetime.now(UTC) + timedelta(days=30)
            scheduler.add_job(JOB, "date", run_date=far, args=(-1,), id="calib-warm")  # connects
            t0 = time.perf_counter()
            for i in range(k):
                scheduler.add_job(JOB, "date", run_date=far, args=(i,), id=f"calib-{i}")
            rate = k / max(time.perf_counter() - t0, 1e-6)
            scheduler.remove_all_jobs()
            due_in_s = max(1.0, 2 * n / rate + 1.0)
        due = time.time() + due_in_s
        run_date = datetime.fromtimestamp(due, UTC)
        t0 = time.perf_counter()
        for key in range(n):
            scheduler.add_job(JOB, "date", run_date=run_date, args=(key,), id=str(key))
        enqueue_s = time.perf_counter() - t0
        overran = max(0.0, time.time() - due)
        scheduler.resume()
        until = due + (wait_s if wait_s is not None else 30 + n / 200)
        for _ in range(10_000_000):
            with _LOCK:
                done = len(_RECORDS)
            if done + len(missed) + len(errors) >= n or time.time() > until:
                break
            time.sleep(0.05)
        time.sleep(0.2)
    finally:
        scheduler.shutdown(wait=False)
        quiet.setLevel(level)
    with _LOCK:
        records = list(_RECORDS)
    first, duplicates = first_runs(records)
    offsets = [at - due for at in first.values()]
    last = max(first.values(), default=due)
    begin = min(first.values(), default=due)
    return {
        "n": n,
        "ran": len(first),
        "lost": n - len(first),
        "missed": len(missed),
        "errors": len(errors),
        "duplicates": duplicates,
        "early": sum(1 for o in offsets if o < 0),
        "lateness": lateness(offsets),
        "enqueue_s": round(enqueue_s, 4),
        "enqueue_rate": round(n / max(enqueue_s, 1e-9), 1),
        "due_in_s": round(due_in_s, 3),
        "enqueue_overran_s": round(overran, 3),
        "drain_s": round(last - due, 4),
        "span_s": round(last - begin, 4),
        "rate_from_due": round(len(first) / max(last - due, 1e-9), 1),
        "rate": round(len(first) / max(last - begin, 1e-9), 1),
        "store": store.engine.dialect.name,
        "misfire_grace_time": misfire_grace_time,
    }

"""Fault injection: kill Redis and Postgres under ingest and under dispatch.

Each scenario runs sopflow (API through a test client, a Dramatiq worker, the
scheduler stepped tick by tick under the manual clock) against a private Redis
and a private Postgres cluster (``fault_servers``), injects one outage, and
reports what came out of it: lost work, duplicate sends, scheduler ticks from
the dependency's return to the last delivery, and the bytes logged meanwhile.
``tests/test_faults.py`` asserts bounds on these; ``python -m bench.faults``
prints the table in docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa

from bench.fault_servers import PostgresCluster, RedisProcess, fault_servers
from bench.servers import wait_until

#: customers per scenario (the test suite runs fewer: SOPFLOW_FAULT_CUSTOMERS)
CUSTOMERS = int(os.environ.get("SOPFLOW_FAULT_CUSTOMERS") or 100)
MAX_TICKS = 30  # recovery must come within this many ticks, or the scenario fails
START = datetime(2026, 3, 2, 2, 30, tzinfo=UTC)  # 10:30 in Asia/Shanghai: no quiet hours


class CountingStderr(io.TextIOBase):
    """Counts what is logged (sopflow's JSON lines and Dramatiq's stdlib warnings)."""

    def __init__(self) -> None:
        self.bytes = 0

    def write(self, text: str) -> int:
        self.bytes += len(text.encode())
        return len(text)


@contextlib.contextmanager
def counting_logs() -> Iterator[CountingStderr]:
    counter, saved = CountingStderr(), sys.stderr
    sys.stderr = counter
    try:
        yield counter
    finally:
        sys.stderr = saved


class Rig:
    """sopflow on the private servers: app, API client, worker, scheduler, send counter."""

    def __init__(self, redis_proc: RedisProcess, cluster: PostgresCluster) -> None:
        from litestar.testing import TestClient
        from sopflow.api.app import build_api
        from sopflow.clock import ManualClock
        from sopflow.db import make_engine
        from sopflow.migrate import upgrade
        from sopflow.worker.actors import install
        from sopflow.worker.broker import make_broker
        from sopflow.worker.scheduler import Scheduler
        from sopflow_sdk.testing.harness import ApiClient, make_test_app, new_tenant

        engine = make_engine(cluster.url)
        upgrade(engine)
        engine.dispose()
        self.redis, self.cluster = redis_proc, cluster
        self.clock = ManualClock(START)
        self.app = make_test_app(cluster.url, clock=self.clock, env={"SOPFLOW_REDIS_URL": redis_proc.url})
        self.broker = make_broker(self.app.settings)
        install(self.app, self.broker)
        tenant_id, key = new_tenant(self.app, "faults")
        self.client = TestClient(build_api(self.app), raise_server_exceptions=False).__enter__()
        self.api = ApiClient(self.client, key, tenant_id)
        self.scheduler = Scheduler(self.app)
        self.worker: Any = None
        self.sends: Counter[str] = Counter()

    def start_worker(self) -> None:
        from sopflow.worker.broker import start_worker

        if self.worker is None:
            self.worker = start_worker(self.broker, 4)

    def stop_worker(self) -> None:
        if self.worker is not None:
            self.worker.stop()
            self.worker = None

    def sop(self, delay: str) -> int:
        definition = {
            "kind": "new_customer",
            "target": {},
            "steps": [{"delay": delay, "actions": [{"type": "send", "channel": "log", "text": "hi"}]}],
        }
        r = self.api.post("/api/v1/sops", json={"name": f"sop {delay}", "definition": definition})
        assert r.status_code == 201, r.text
        assert self.api.post(f"/api/v1/sops/{r.json()['id']}/start").status_code == 200
        from sopflow.engine.delivery.sends import channel_for

        channel = channel_for(self.app, self.api.tenant_id, "log")[0]
        original = channel.send

        def counting(message: Any) -> Any:
            self.sends[message.idempotency_key] += 1
            return original(message)

        channel.send = counting
        return r.json()["id"]

    def post_customers(self, prefix: str, n: int = CUSTOMERS) -> list[int]:
        events = [
            {
                "type": "customer.added",
                "idempotency_key": f"{prefix}-{i}",
                "identity": {"channel": "wecom", "external_id": f"{prefix}-{i}", "staff_external_id": "s1"},
            }
            for i in range(n)
        ]
        r = self.api.post("/api/v1/events", json={"events": events})
        return [r.status_code, *(x.get("customer_id", 0) for x in r.json().get("results", []))]

    def counts(self) -> dict[str, int]:
        from sopflow.models import Enrollment, Touch

        with self.app.tx() as s:
            enrolled = s.scalar(sa.select(sa.func.count()).select_from(Enrollment)) or 0
            sent = s.scalar(sa.select(sa.func.count()).select_from(Touch).where(Touch.status == "sent")) or 0
        return {"enrolled": enrolled, "sent": sent}

    def tick(self) -> None:
        """One scheduler tick, then let the worker finish what it was given."""
        self.clock.advance(timedelta(seconds=self.app.settings.scheduler_interval))
        self.scheduler.tick()
        with contextlib.suppress(Exception):
            self.broker.join("sopflow", timeout=20_000)

    def ticks_until(self, done: Callable[[], bool]) -> int:
        for n in range(1, MAX_TICKS + 1):
            self.tick()
            if done():
                return n
        return MAX_TICKS + 1

    def close(self) -> None:
        self.stop_worker()
        self.client.__exit__(None, None, None)
        self.broker.close()
        self.app.dispose()


def _result(name: str, rig: Rig, ticks: int, log_bytes: int, seconds: float, **extra: Any) -> dict[str, Any]:
    counts = rig.counts()
    return {
        "outage": name,
        "recovery_ticks": ticks,
        "recovery_seconds": round(seconds, 1),
        "lost": CUSTOMERS - counts["sent"],
        "duplicates": sum(n - 1 for n in rig.sends.values() if n > 1),
        "log_bytes": log_bytes,
        "enrolled": counts["enrolled"],
        **extra,
    }


def redis_restart_during_dispatch(aof: bool) -> dict[str, Any]:
    """Touches claimed and handed to Redis, then Redis killed -9 and restarted
    (empty, or from its append-only file) before any worker took them."""
    with fault_servers(aof=aof) as (redis_proc, cluster):
        rig = Rig(redis_proc, cluster)
        try:
            rig.sop("1h")
            rig.start_worker()
            rig.post_customers("d")
            rig.tick()  # the evaluate messages enrol everyone
            assert rig.counts()["enrolled"] == CUSTOMERS
            rig.stop_worker()
            rig.clock.advance(timedelta(hours=1))
            rig.scheduler.tick()  # claims all and hands them to Redis; no worker takes them
            with counting_logs() as logs:
                redis_proc.kill9()
                redis_proc.start()
                began = time.monotonic()
                rig.start_worker()
                ticks = rig.ticks_until(lambda: rig.counts()["sent"] >= CUSTOMERS)
            name = (
                "Redis kill -9, restart with AOF, mid-dispatch"
                if aof
                else "Redis kill -9, restart empty, mid-dispatch"
            )
            return _result(name, rig, ticks, logs.bytes, time.monotonic() - began)
        finally:
            rig.close()


def redis_down_during_ingest() -> dict[str, Any]:
    """Events posted while Redis is down (killed -9), then Redis restarted empty."""
    with fault_servers() as (redis_proc, cluster):
        rig = Rig(redis_proc, cluster)
        try:
            rig.sop("0m")
            rig.start_worker()
            with counting_logs() as logs:
                redis_proc.kill9()
                status = rig.post_customers("i")[0]
                redis_proc.start()
                began = time.monotonic()
                ticks = rig.ticks_until(lambda: rig.counts()["sent"] >= CUSTOMERS)
            retried = rig.post_customers("i")  # the client's retry: all duplicates
            return _result(
                "Redis kill -9 during ingest",
                rig,
                ticks,
                logs.bytes,
                time.monotonic() - began,
                status=status,
                retry_status=retried[0],
            )
        finally:
            rig.close()


def postgres_down_during_ingest(kill: bool) -> dict[str, Any]:
    """Events posted while Postgres is down (fast shutdown or kill -9): 503, then
    the client's retry once it is back."""
    with fault_servers() as (redis_proc, cluster):
        rig = Rig(redis_proc, cluster)
        try:
            rig.sop("0m")
            rig.start_worker()
            with counting_logs() as logs:
                cluster.kill9() if kill else cluster.stop_fast()
                r = rig.api.post(
                    "/api/v1/events",
                    json={"events": [{"type": "customer.added", "idempotency_key": "p-0", "customer_id": 1}]},
                )
                status, retry_after = r.status_code, r.headers.get("retry-after")
                cluster.start()
                began = time.monotonic()
                retried = rig.post_customers("p")[0]
                ticks = rig.ticks_until(lambda: rig.counts()["sent"] >= CUSTOMERS)
            name = "Postgres kill -9 during ingest" if kill else "Postgres fast shutdown during ingest"
            return _result(
                name,
                rig,
                ticks,
                logs.bytes,
                time.monotonic() - began,
                status=status,
                retry_after=retry_after,
                retry_status=retried,
            )
        finally:
            rig.close()


def postgres_down_during_dispatch(kill: bool, outage_seconds: float = 3.0) -> dict[str, Any]:
    """Touches handed to the worker while Postgres is down, for ``outage_seconds``."""
    with fault_servers() as (redis_proc, cluster):
        rig = Rig(redis_proc, cluster)
        try:
            rig.sop("1h")
            rig.start_worker()
            rig.post_customers("q")
            rig.tick()
            rig.clock.advance(timedelta(hours=1))
            with counting_logs() as logs:
                rig.stop_worker()
                rig.scheduler.tick()  # claimed and queued
                cluster.kill9() if kill else cluster.stop_fast()
                rig.start_worker()  # takes the batches against a dead database
                end = time.monotonic() + outage_seconds
                while time.monotonic() < end:
                    rig.scheduler.tick()  # the scheduler too keeps failing, quietly
                    time.sleep(0.5)
                cluster.start()
                began = time.monotonic()
                wait_until(lambda: _reachable(rig), 30, "postgres to answer")
                ticks = rig.ticks_until(lambda: rig.counts()["sent"] >= CUSTOMERS)
            name = "Postgres kill -9 mid-dispatch" if kill else "Postgres fast shutdown mid-dispatch"
            return _result(name, rig, ticks, logs.bytes, time.monotonic() - began, outage_s=outage_seconds)
        finally:
            rig.close()


def _reachable(rig: Rig) -> bool:
    try:
        rig.counts()
    except Exception:
        return False
    return True


SCENARIOS: dict[str, Callable[[], dict[str, Any]]] = {
    "redis-empty-dispatch": lambda: redis_restart_during_dispatch(aof=False),
    "redis-aof-dispatch": lambda: redis_restart_during_dispatch(aof=True),
    "redis-ingest": redis_down_during_ingest,
    "postgres-fast-ingest": lambda: postgres_down_during_ingest(kill=False),
    "postgres-kill-ingest": lambda: postgres_down_during_ingest(kill=True),
    "postgres-fast-dispatch": lambda: postgres_down_during_dispatch(kill=False),
    "postgres-kill-dispatch": lambda: postgres_down_during_dispatch(kill=True),
}


def markdown(rows: list[dict[str, Any]]) -> str:
    lines = [
        "| outage | recovery (scheduler ticks) | recovery (s) | lost | duplicates | log bytes |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['outage']} | {r['recovery_ticks']} | {r['recovery_seconds']} | {r['lost']} "
            f"| {r['duplicates']} | {r['log_bytes']:,} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("scenarios", nargs="*", help=f"some of: {', '.join(SCENARIOS)} (default: all)")
    args = parser.parse_args()
    unknown = set(args.scenarios) - set(SCENARIOS)
    if unknown:
        parser.error(f"unknown scenarios {sorted(unknown)}; choose from {', '.join(SCENARIOS)}")
    rows = []
    for name in args.scenarios or list(SCENARIOS):
        rows.append(SCENARIOS[name]())
        print(rows[-1], file=sys.stderr)
    print(markdown(rows))


if __name__ == "__main__":
    main()

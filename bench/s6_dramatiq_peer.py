"""The naive Dramatiq peer of S6 (event → first touch), run as a stock worker:

    python -m dramatiq bench.s6_dramatiq_peer --processes 2 --threads 8

with ``BENCH_PEER_REDIS_URL``, ``BENCH_PEER_DATABASE_URL`` (SQLite file or
Postgres) and ``BENCH_PEER_RECEIVER`` (the bench's 127.0.0.1 webhook URL) set.
Default Dramatiq settings: Redis broker, default middleware, prefetch and
``worker_timeout``.

``evaluate(key, customer)`` is the event: one transaction inserts the event row
and the customer's first touch (the S6 limit times exactly this transaction,
``event_and_touch``), then ``deliver`` is sent with ``delay=0`` — through
Dramatiq's delay queue, as a naive per-step scheduler on Dramatiq does.
``deliver`` calls the channel — a no-op that appends ``<customer> <wall time>``
to a file in ``BENCH_PEER_OUT`` (``BENCH_PEER_CHANNEL=log``, the default), or,
with ``BENCH_PEER_CHANNEL=webhook``, ``httpx.post`` to the receiver with the
touch's Idempotency-Key as sopflow's webhook action does — and marks the touch
sent.  Without ``BENCH_PEER_REDIS_URL`` (the bench process) importing this
module declares no actor and creates no broker.
"""

from __future__ import annotations

import os
import time
from typing import Any

#: the scratch tables the S6 limit and this peer write (created by ``create_tables``)
EVENTS = "bench_s6_events"
TOUCHES = "bench_s6_touches"


def create_tables(engine: Any) -> None:
    pg = engine.dialect.name == "postgresql"
    ident = "BIGSERIAL PRIMARY KEY" if pg else "INTEGER PRIMARY KEY"
    real = "DOUBLE PRECISION" if pg else "REAL"
    with engine.begin() as conn:
        conn.exec_driver_sql(
            f"CREATE TABLE {EVENTS} (id {ident}, idempotency_key TEXT NOT NULL UNIQUE, "
            f"customer_key BIGINT NOT NULL, received_at {real} NOT NULL)"
        )
        conn.exec_driver_sql(
            f"CREATE TABLE {TOUCHES} (id {ident}, customer_key BIGINT NOT NULL, step_index INTEGER NOT NULL, "
            f"status TEXT NOT NULL, due_at {real} NOT NULL, UNIQUE (customer_key, step_index))"
        )
        conn.exec_driver_sql(f"CREATE INDEX {TOUCHES}_due ON {TOUCHES} (status, due_at)")


def event_and_touch(conn: Any, key: str, customer: int, now: float) -> int:
    """Insert the event and the customer's first touch (due now); returns the touch id."""
    if conn.dialect.name == "postgresql":
        ev = f"INSERT INTO {EVENTS} (idempotency_key, customer_key, received_at) VALUES (%(k)s, %(c)s, %(t)s)"
        touch = (
            f"INSERT INTO {TOUCHES} (customer_key, step_index, status, due_at) "
            "VALUES (%(c)s, 0, 'scheduled', %(t)s) RETURNING id"
        )
    else:
        ev = f"INSERT INTO {EVENTS} (idempotency_key, customer_key, received_at) VALUES (:k, :c, :t)"
        touch = (
            f"INSERT INTO {TOUCHES} (customer_key, step_index, status, due_at) "
            "VALUES (:c, 0, 'scheduled', :t) RETURNING id"
        )
    conn.exec_driver_sql(ev, {"k": key, "c": customer, "t": now})
    return int(conn.exec_driver_sql(touch, {"c": customer, "t": now}).scalar_one())


if os.environ.get("BENCH_PEER_REDIS_URL"):  # inside `dramatiq bench.s6_dramatiq_peer`
    import dramatiq
    import httpx
    from dramatiq.brokers.redis import RedisBroker

    broker = RedisBroker(url=os.environ["BENCH_PEER_REDIS_URL"])
    dramatiq.set_broker(broker)
    _engine: Any = None

    def engine() -> Any:
        global _engine
        if _engine is None:
            from sopflow.db import make_engine

            _engine = make_engine(os.environ["BENCH_PEER_DATABASE_URL"])
        return _engine

    @dramatiq.actor
    def evaluate(key: str, customer: int) -> None:
        with engine().begin() as conn:
            touch_id = event_and_touch(conn, key, customer, time.time())
        deliver.send_with_options(args=(touch_id, customer), delay=0)

    _out: dict[int, int] = {}

    def noop_send(customer: int) -> None:
        """The no-op channel: one ``<customer> <wall time>`` line, one ``write`` on an
        O_APPEND descriptor of this process (the bench reads the files)."""
        pid = os.getpid()
        if pid not in _out:
            path = os.path.join(os.environ["BENCH_PEER_OUT"], f"{pid}.txt")
            _out[pid] = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        os.write(_out[pid], f"{customer} {time.time():.6f}\n".encode())

    @dramatiq.actor
    def deliver(touch_id: int, customer: int) -> None:
        if os.environ.get("BENCH_PEER_CHANNEL", "log") == "webhook":  # as sopflow's webhook action
            r = httpx.post(
                os.environ["BENCH_PEER_RECEIVER"],
                json={"touch_id": touch_id, "customer_id": customer},
                headers={"Idempotency-Key": f"touch:{touch_id}"},
                timeout=10,
            )
            r.raise_for_status()
        else:
            noop_send(customer)
        with engine().begin() as conn:
            conn.exec_driver_sql(f"UPDATE {TOUCHES} SET status = 'sent' WHERE id = {int(touch_id)}")

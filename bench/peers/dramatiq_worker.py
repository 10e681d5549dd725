"""The module the ``dramatiq`` CLI loads for the peers: a Redis broker on
``BENCH_PEER_REDIS_URL`` (default middleware, default namespace) and a no-op
actor that appends ``<key> <wall time>`` to a per-process file in
``BENCH_PEER_OUT`` (one ``os.write`` on an ``O_APPEND`` descriptor: a few µs, no
Redis round trip, so the record costs next to nothing next to the broker)."""

from __future__ import annotations

import os
import time

import dramatiq
from dramatiq.brokers.redis import RedisBroker

from bench.peers.dramatiq_peer import ACTOR, QUEUE

broker = RedisBroker(url=os.environ["BENCH_PEER_REDIS_URL"])
dramatiq.set_broker(broker)

_out: dict[int, int] = {}


def _fd() -> int:
    pid = os.getpid()  # the CLI forks: one file per worker process
    if pid not in _out:
        path = os.path.join(os.environ["BENCH_PEER_OUT"], f"{pid}.rec")
        _out[pid] = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    return _out[pid]


@dramatiq.actor(actor_name=ACTOR, queue_name=QUEUE, max_retries=0)
def noop(key: int) -> None:
    os.write(_fd(), f"{key} {time.time():.6f}\n".encode())

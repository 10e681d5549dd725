"""The broker: Redis when ``SOPFLOW_REDIS_URL`` is set, else Dramatiq's in-memory
broker with worker threads inside the same process (the embedded mode)."""

from __future__ import annotations

from typing import Any

import dramatiq
from dramatiq.brokers.stub import StubBroker
from dramatiq.middleware import (
    AgeLimit,
    Callbacks,
    Pipelines,
    Retries,
    ShutdownNotifications,
    TimeLimit,
)

from sopflow.settings import Settings


def middleware() -> list[Any]:
    # Prometheus middleware is left out: it opens its own HTTP port per worker.
    return [
        AgeLimit(),
        TimeLimit(),
        ShutdownNotifications(),
        Callbacks(),
        Pipelines(),
        Retries(min_backoff=1000, max_backoff=300_000, max_retries=10),
    ]


def make_broker(settings: Settings) -> dramatiq.Broker:
    if settings.redis_url:
        from dramatiq.brokers.redis import RedisBroker

        broker: dramatiq.Broker = RedisBroker(
            url=settings.redis_url, middleware=middleware(), namespace="sopflow"
        )
    else:
        broker = StubBroker(middleware=middleware())
        broker.emit_after("process_boot")
    return broker


def start_worker(broker: dramatiq.Broker, threads: int) -> dramatiq.Worker:
    worker = dramatiq.Worker(broker, worker_threads=threads, worker_timeout=100)
    worker.start()
    return worker

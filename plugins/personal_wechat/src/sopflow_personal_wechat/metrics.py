"""Prometheus metrics per account, read from the pacing rows every worker writes.

sopflow's ``/metrics`` serves prometheus_client's default registry.  Sends and
deferrals happen in the workers, so counters kept in memory would be lost to
the API process that answers the scrape; this collector reads the database
instead, so any process reports the numbers of every process:
``sopflow_personal_wechat_sent_total``, ``…_deferred_total`` (by pacing),
``…_restrictions_total``, ``…_today`` (per kind) and ``…_logged_in``.
``watch(engine)`` registers it once per process, on the first engine known.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import sqlalchemy as sa
from prometheus_client.core import REGISTRY, CounterMetricFamily, GaugeMetricFamily

from sopflow_personal_wechat.store import pacing

_PREFIX = "sopflow_personal_wechat"


class AccountMetrics:
    """A prometheus_client collector over ``personal_wechat_pacing``."""

    def __init__(self, engine: sa.Engine | None = None) -> None:
        self.engine = engine

    def collect(self) -> Iterator[Any]:
        if self.engine is None:
            return
        try:
            with self.engine.connect() as c:
                rows = list(c.execute(sa.select(pacing)).mappings())
        except sa.exc.SQLAlchemyError:  # the table is not there yet, or the database is down
            return
        sent = CounterMetricFamily(f"{_PREFIX}_sent", "touches sent per account", labels=["account"])
        deferred = CounterMetricFamily(
            f"{_PREFIX}_deferred", "touches deferred by pacing", labels=["account"]
        )
        restricted = CounterMetricFamily(f"{_PREFIX}_restrictions", "restriction signals", labels=["account"])
        today = GaugeMetricFamily(f"{_PREFIX}_today", "today's sends per kind", labels=["account", "kind"])
        logged_in = GaugeMetricFamily(f"{_PREFIX}_logged_in", "1 while logged in", labels=["account"])
        for row in rows:
            key = row["account_key"]
            sent.add_metric([key], row["sent"])
            deferred.add_metric([key], row["deferred"])
            restricted.add_metric([key], row["restrictions"])
            logged_in.add_metric([key], 1 if row["logged_in"] else 0)
            for kind, count in sorted((row["counts"] or {}).items()):
                today.add_metric([key, kind], count)
        yield from (sent, deferred, restricted, today, logged_in)


_collector = AccountMetrics()
_guard = threading.Lock()
_registered = False


def watch(engine: sa.Engine) -> None:
    """Report the accounts on ``engine`` at ``/metrics`` (the first engine wins)."""
    global _registered
    with _guard:
        if _collector.engine is None:
            _collector.engine = engine
        if not _registered:
            REGISTRY.register(_collector)  # type: ignore[arg-type]
            _registered = True

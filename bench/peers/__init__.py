"""The peers of the benchmark suite, as reusable functions the scenarios call.

- :func:`dramatiq_delayed` — the naive peer: one Dramatiq message per touch sent
  with ``send_with_options(delay=…)`` so that all come due at one instant, default
  worker settings (the ``dramatiq`` CLI, 2 processes × 8 threads, on a private Redis);
  lateness after the due instant, throughput once due, duplicates, lost.
- :func:`dramatiq_noop_throughput` — the raw library's consume rate: n immediate
  messages to a no-op actor (msgs/s from the first to the last execution).
- :func:`dramatiq_head_of_line` — a backlog of far-future delayed messages plus
  short-delay probes: how many probes ran within 40 s, and their lateness.
- :func:`apscheduler_burst` — APScheduler 3.x, ``SQLAlchemyJobStore`` on a given
  database URL, n date-trigger jobs due at one instant.

Every function enqueues first and sets the due instant after the (estimated)
end of the enqueue, so enqueue time is not lateness; the enqueue rate is
reported apart.  Worker processes are stopped by PID (their process group),
and every wait is bounded in time.
"""

from __future__ import annotations

from bench.peers.aps import apscheduler_burst
from bench.peers.dramatiq_peer import dramatiq_delayed, dramatiq_head_of_line, dramatiq_noop_throughput
from bench.peers.stats import lateness, percentile

__all__ = [
    "apscheduler_burst",
    "dramatiq_delayed",
    "dramatiq_head_of_line",
    "dramatiq_noop_throughput",
    "lateness",
    "percentile",
]

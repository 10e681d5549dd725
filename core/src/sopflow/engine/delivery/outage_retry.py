"""Retrying one step across a short outage of the database, in place.

Used where giving up costs more than waiting: the outcomes of channel calls
already made.  Were their record lost, the touches would sit in ``sending``
until their lease ran out (and a non-idempotent one would go to review).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, TypeVar

from sopflow.outages import dependency_of

T = TypeVar("T")


def retry_through_outage(
    fn: Callable[[], T],
    budget_seconds: float,
    on_outage: Callable[[BaseException], Any] = lambda exc: None,
    sleep: Callable[[float], None] = time.sleep,
) -> T:
    """Call ``fn`` until it succeeds, waiting 0.25 s, 0.5 s, … (at most 5 s) between
    tries while it fails with an outage, for at most ``budget_seconds`` in all;
    then (or on any other error) the error is raised."""
    waited, delay = 0.0, 0.25
    while True:
        try:
            return fn()
        except Exception as exc:
            if dependency_of(exc) is None or waited + delay > budget_seconds:
                raise
            on_outage(exc)
        sleep(delay)
        waited += delay
        delay = min(delay * 2, 5.0)

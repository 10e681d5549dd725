"""Bounded logging under outages: one line per failure class per interval.

A dead database makes every batch, event and tick fail the same way; logging
each with its traceback wrote megabytes a second.  ``FailureLog.report`` writes
the first failure of a class (what failed, the dependency, a short message)
and counts the rest until the interval has passed; the next line carries the
count (``suppressed``).  Only failures that are not outages (bugs) keep their
traceback, and those too once per interval.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from sopflow.logging import get_logger
from sopflow.outages import dependency_of

MAX_MESSAGE = 300


class FailureLog:
    def __init__(
        self, interval: float, logger: Any = None, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.interval = interval
        self.log = logger or get_logger("sopflow.failures")
        self._clock = clock
        self._lock = threading.Lock()
        self._last: dict[tuple[str, str], float] = {}
        self._suppressed: dict[tuple[str, str], int] = {}

    def report(self, what: str, exc: BaseException, **context: Any) -> bool:
        """Log ``exc`` as a failure of ``what`` unless one of its class was logged
        less than ``interval`` ago (then count it).  Returns whether it logged."""
        dependency = dependency_of(exc)
        key = (what, dependency or type(exc).__name__)
        now = self._clock()
        with self._lock:
            last = self._last.get(key)
            if last is not None and now - last < self.interval:
                self._suppressed[key] = self._suppressed.get(key, 0) + 1
                return False
            self._last[key] = now
            suppressed = self._suppressed.pop(key, 0)
        message = str(exc).strip().splitlines()[0][:MAX_MESSAGE] if str(exc).strip() else type(exc).__name__
        fields = {"error": message, "error_type": type(exc).__name__, "suppressed": suppressed, **context}
        if dependency is not None:
            self.log.error(what, dependency=dependency, **fields)
        else:
            self.log.error(what, exc_info=exc, **fields)
        return True

    def recovered(self, what: str) -> None:
        """``what`` works again: the next failure is logged at once."""
        with self._lock:
            for key in [k for k in self._last if k[0] == what]:
                suppressed = self._suppressed.pop(key, 0)
                del self._last[key]
                if suppressed:
                    self.log.info(f"{what}_recovered", failure=key[1], suppressed=suppressed)

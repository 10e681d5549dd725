"""A settable clock shared by a fake gateway and the code under test, so the
risk-control windows and the pacing gaps are tested without waiting."""

from __future__ import annotations

import threading


class FakeClock:
    """Callable returning epoch seconds; ``advance`` moves it forward.  It starts at
    14:33 China time, outside the default quiet hours."""

    def __init__(self, start: float = 1_700_030_000.0) -> None:
        self._now = start
        self._lock = threading.Lock()

    def __call__(self) -> float:
        with self._lock:
            return self._now

    def advance(self, seconds: float) -> None:
        with self._lock:
            self._now += seconds

    def set(self, now: float) -> None:
        with self._lock:
            self._now = max(self._now, now)

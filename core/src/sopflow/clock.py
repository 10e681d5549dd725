"""The injected clock.  Engine code asks the clock, never ``datetime.now``, so a
day-40 touch is tested in milliseconds and the demo runs weeks in seconds."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta


class SystemClock:
    manual = False

    def now(self) -> datetime:
        return datetime.now(UTC)


class ManualClock:
    """A clock that moves only when told to.  Thread-safe."""

    manual = True

    def __init__(self, start: datetime | None = None) -> None:
        self._now = start or datetime(2026, 1, 5, 1, 0, tzinfo=UTC)
        self._lock = threading.Lock()

    def now(self) -> datetime:
        with self._lock:
            return self._now

    def advance(self, delta: timedelta) -> datetime:
        if delta < timedelta(0):
            raise ValueError("the clock only moves forward")
        with self._lock:
            self._now += delta
            return self._now

    def set(self, when: datetime) -> datetime:
        if when.tzinfo is None:
            raise ValueError("give an aware datetime")
        with self._lock:
            self._now = when.astimezone(UTC)
            return self._now


Clock = SystemClock | ManualClock


def make_clock(kind: str) -> Clock:
    return ManualClock() if kind == "manual" else SystemClock()

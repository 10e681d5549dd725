"""Client-side request budgets that keep us under WeCom's frequency limits.

WeCom counts calls per corp per API (10,000/min and 150,000/h, document 90454)
and answers 45009 past the limit, after which the corp is blocked for the rest
of the window.  Finding the limit by hitting it is expensive, so the client
spends from a local budget first and reports ``retry_after`` itself.

``Limit(count, period, burst)`` is a token bucket of ``burst`` tokens refilled
at ``(count - burst) / period`` per second: in *any* window of ``period``
seconds at most ``count`` requests pass, whatever the burst pattern.
App messages (``message/send``) are limited per member instead (30/min and
1000/h; WeCom silently drops the excess), tracked with an exact sliding log.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence

import attrs

Clock = Callable[[], float]


def _default_burst(count: int) -> int:
    return max(1, count // 10)


@attrs.frozen
class Limit:
    """At most ``count`` calls in any ``period`` seconds, ``burst`` of them at once."""

    count: int
    period: float
    burst: int = attrs.field(default=attrs.Factory(lambda s: _default_burst(s.count), True))

    def __attrs_post_init__(self) -> None:
        if not (self.count >= 2 and 1 <= self.burst < self.count and self.period > 0):
            raise ValueError(
                f"Limit({self.count}, {self.period}, burst={self.burst}): need count >= 2, "
                "1 <= burst < count and period > 0"
            )


#: 90 % of WeCom's documented per-corp, per-API limits (document 90454).
DEFAULT_LIMITS: tuple[Limit, ...] = (Limit(9_000, 60, burst=1_000), Limit(135_000, 3_600, 5_000))
#: Per-member limits for app messages (message/send): 30/min and 1000/h.
MEMBER_MESSAGE_LIMITS: tuple[tuple[int, float], ...] = ((30, 60.0), (1_000, 3_600.0))


class _Bucket:
    def __init__(self, limit: Limit, now: float) -> None:
        self.capacity = float(limit.burst)
        self.rate = (limit.count - limit.burst) / limit.period
        self.tokens = self.capacity
        self.updated = now

    def wait(self, now: float) -> float:
        if now > self.updated:
            self.tokens = min(self.capacity, self.tokens + (now - self.updated) * self.rate)
            self.updated = now
        return 0.0 if self.tokens >= 1 else (1 - self.tokens) / self.rate


class RequestBudget:
    """Token buckets per ``(corp_id, api path)``; share one instance to share a budget.

    ``overrides`` maps an API path (``externalcontact/get``) to its own limits.
    """

    def __init__(
        self,
        limits: Sequence[Limit] = DEFAULT_LIMITS,
        overrides: Mapping[str, Sequence[Limit]] | None = None,
        clock: Clock = time.time,
    ) -> None:
        self.limits = tuple(limits)
        self.overrides = {k: tuple(v) for k, v in (overrides or {}).items()}
        self.clock = clock
        self._buckets: dict[tuple[str, str], list[_Bucket]] = {}
        self._lock = threading.Lock()

    def reserve(self, corp_id: str, path: str) -> float:
        """Spend one request if every bucket allows it and return 0; otherwise
        spend nothing and return the seconds until the request would fit."""
        now = self.clock()
        with self._lock:
            buckets = self._buckets.get((corp_id, path))
            if buckets is None:
                limits = self.overrides.get(path, self.limits)
                buckets = self._buckets[(corp_id, path)] = [_Bucket(lim, now) for lim in limits]
            wait = max((b.wait(now) for b in buckets), default=0.0)
            if wait == 0.0:
                for b in buckets:
                    b.tokens -= 1
            return wait


class MemberMessageLimiter:
    """Exact sliding-window counts of app messages per member (message/send)."""

    def __init__(
        self,
        limits: Iterable[tuple[int, float]] = MEMBER_MESSAGE_LIMITS,
        clock: Clock = time.time,
    ) -> None:
        self.limits = tuple(limits)
        self.clock = clock
        self._sent: dict[str, deque[float]] = {}
        self._lock = threading.Lock()
        self._horizon = max((p for _, p in self.limits), default=0.0)

    def _wait_for(self, member: str, now: float) -> float:
        log = self._sent.setdefault(member, deque())
        while log and log[0] <= now - self._horizon:
            log.popleft()
        wait = 0.0
        for count, period in self.limits:
            recent = [t for t in log if t > now - period]
            if len(recent) >= count:
                wait = max(wait, recent[-count] + period - now)
        return wait

    def acquire(self, members: Iterable[str]) -> float:
        """Record one message to each member and return 0, or record nothing and
        return the seconds until every member can receive one more."""
        members = list(dict.fromkeys(members))
        now = self.clock()
        with self._lock:
            wait = max((self._wait_for(m, now) for m in members), default=0.0)
            if wait == 0.0:
                for m in members:
                    self._sent[m].append(now)
            return wait

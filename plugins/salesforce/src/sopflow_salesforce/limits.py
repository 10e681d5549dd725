"""API limits: ``Sforce-Limit-Info`` read on every response, and the backoff.

Salesforce's daily allocation is org-wide: when it runs out every integration
and user is blocked until the trailing 24 h fall below it.  So the connector
reads ``api-usage=used/max`` from every response (errors included: a requests
response hook, since simple-salesforce parses it only on success), and past the
account's ``limit_share`` of the allocation waits ``slowdown_seconds`` before
each call.  ``REQUEST_LIMIT_EXCEEDED`` and 503 are retried with exponential
backoff, honouring ``Retry-After``; when the attempts run out the caller gets a
``RetriableError`` so the work (an outbox row, a sync window) stays pending.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable
from typing import Any

import attrs

#: How the client waits when a ``Pacing`` names no ``sleep`` (tests replace it).
sleep: Callable[[float], None] = time.sleep

_USAGE = re.compile(r"api-usage=(\d+)/(\d+)")


@attrs.define
class Usage:
    """The last ``api-usage`` Salesforce reported for one account."""

    used: int = 0
    max: int = 0
    retry_after: float | None = None  # the last Retry-After seen

    @property
    def share(self) -> float:
        return self.used / self.max if self.max else 0.0


@attrs.define
class Pacing:
    """How the client spends the allocation and waits out refusals."""

    limit_share: float = 0.8
    slowdown_seconds: float = 2.0
    attempts: int = 4
    base_delay: float = 1.0
    max_delay: float = 60.0
    sleep: Callable[[float], None] = attrs.field(default=None, repr=False)

    def backoff(self, attempt: int, retry_after: float | None) -> float:
        """Seconds to wait before attempt ``attempt + 1``: Retry-After when given, else exponential."""
        if retry_after is not None:
            return min(float(retry_after), self.max_delay)
        return min(self.base_delay * 2**attempt, self.max_delay)


class UsageRecorder:
    """A requests response hook keeping ``Usage`` up to date."""

    def __init__(self) -> None:
        self.usage = Usage()
        self._lock = threading.Lock()

    def __call__(self, response: Any, *args: Any, **kwargs: Any) -> Any:
        header = response.headers.get("Sforce-Limit-Info", "")
        m = _USAGE.search(header)
        retry_after = response.headers.get("Retry-After")
        with self._lock:
            if m:
                self.usage.used, self.usage.max = int(m[1]), int(m[2])
            try:
                self.usage.retry_after = float(retry_after) if retry_after is not None else None
            except ValueError:
                self.usage.retry_after = None
        return response

"""A small fixed-window counter per key, in process memory, on the host's clock.

For a form page that is enough: it stops a script hammering one link or from
one address; several processes each count on their own (say so in the docs).
"""

from __future__ import annotations

import threading
from collections import OrderedDict

MAX_KEYS = 50_000


class Windows:
    def __init__(self, limit: int, seconds: int) -> None:
        self.limit, self.seconds = limit, seconds
        self._counts: OrderedDict[tuple[str, int], int] = OrderedDict()
        self._lock = threading.Lock()

    def hit(self, key: str, now: float) -> bool:
        """Count one request for ``key``; ``False`` when over the limit in this window."""
        slot = (key, int(now // self.seconds))
        with self._lock:
            count = self._counts.get(slot, 0) + 1
            self._counts[slot] = count
            self._counts.move_to_end(slot)
            while len(self._counts) > MAX_KEYS:
                self._counts.popitem(last=False)
        return count <= self.limit

    def clear(self) -> None:
        with self._lock:
            self._counts.clear()

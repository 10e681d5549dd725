"""access_token caching with single-flight refresh.

WeCom wants one token per (corp, app secret), cached and re-fetched only when it
is about to expire or was invalidated; many workers refreshing at once trip its
frequency and concurrency limits (45009/45033).  So: a pluggable cache (memory
or Redis), a refresh 300 s before expiry, an in-process lock per cache key plus
an optional cross-process lock, and a re-check after taking the locks so only
one caller fetches.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from typing import Any, Protocol

import attrs
from sopflow_sdk import RetriableError, Secret

#: Refresh this many seconds before WeCom's expiry.
REFRESH_MARGIN = 300.0

LockFactory = Callable[[str], AbstractContextManager[Any]]


@attrs.frozen
class CachedToken:
    """A token and the time (by the client's clock) to stop using it and refresh."""

    value: Secret
    refresh_at: float


class TokenCache(Protocol):
    def get(self, key: str) -> CachedToken | None: ...

    def set(self, key: str, token: CachedToken) -> None: ...

    def delete(self, key: str) -> None: ...


def token_key(corp_id: str, secret: Secret) -> str:
    """Cache key per (corp, app): the secret only as a truncated sha256."""
    digest = hashlib.sha256(secret.reveal().encode("utf-8")).hexdigest()[:24]
    return f"{corp_id}:{digest}"


class MemoryTokenCache:
    """Process-local cache; share one instance between clients to share tokens."""

    def __init__(self) -> None:
        self._items: dict[str, CachedToken] = {}
        self._lock = threading.Lock()

    def get(self, key: str) -> CachedToken | None:
        with self._lock:
            return self._items.get(key)

    def set(self, key: str, token: CachedToken) -> None:
        with self._lock:
            self._items[key] = token

    def delete(self, key: str) -> None:
        with self._lock:
            self._items.pop(key, None)

    def __repr__(self) -> str:
        return f"MemoryTokenCache({len(self._items)} tokens)"


class RedisTokenCache:
    """Cache tokens in Redis so every worker process shares them (redis-py client)."""

    def __init__(
        self, redis: Any, prefix: str = "sopflow:wecom:token:", clock: Callable[[], float] = time.time
    ) -> None:
        self.redis = redis
        self.prefix = prefix
        self.clock = clock

    def get(self, key: str) -> CachedToken | None:
        raw = self.redis.get(self.prefix + key)
        if raw is None:
            return None
        data = json.loads(raw)
        return CachedToken(Secret(data["access_token"]), float(data["refresh_at"]))

    def set(self, key: str, token: CachedToken) -> None:
        ttl = max(1, int(token.refresh_at - self.clock()))
        body = json.dumps({"access_token": token.value.reveal(), "refresh_at": token.refresh_at})
        self.redis.set(self.prefix + key, body, ex=ttl)

    def delete(self, key: str) -> None:
        self.redis.delete(self.prefix + key)

    def __repr__(self) -> str:
        return f"RedisTokenCache(prefix={self.prefix!r})"


def redis_lock_factory(
    redis: Any,
    *,
    timeout: float = 10.0,
    blocking_timeout: float = 15.0,
    prefix: str = "sopflow:wecom:token-lock:",
) -> LockFactory:
    """A cross-process lock per token key using redis-py's ``Lock`` (auto-expiring
    after ``timeout`` s so a crashed holder cannot block refreshes forever)."""

    @contextlib.contextmanager
    def lock(key: str) -> Iterator[None]:
        held = redis.lock(prefix + key, timeout=timeout, blocking_timeout=blocking_timeout)
        if not held.acquire():
            raise RetriableError("another process is refreshing the WeCom token", retry_after=1.0)
        try:
            yield
        finally:
            with contextlib.suppress(Exception):  # expired while held: nothing to release
                held.release()

    return lock


_thread_locks: dict[str, threading.Lock] = {}
_thread_locks_guard = threading.Lock()


def _thread_lock(key: str) -> threading.Lock:
    with _thread_locks_guard:
        return _thread_locks.setdefault(key, threading.Lock())


class TokenProvider:
    """Hands out a valid token, fetching it at most once per expiry or invalidation.

    ``fetch()`` returns ``(access_token, expires_in)``.
    """

    def __init__(
        self,
        key: str,
        fetch: Callable[[], tuple[str, float]],
        cache: TokenCache,
        lock_factory: LockFactory | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.key = key
        self._fetch = fetch
        self.cache = cache
        self.lock_factory = lock_factory
        self.clock = clock

    def _fresh(self, cached: CachedToken | None, stale: Secret | None) -> bool:
        if cached is None or (stale is not None and cached.value == stale):
            return False
        return cached.refresh_at > self.clock()

    def get(self) -> Secret:
        """The cached token, or a new one if it is missing or about to expire."""
        cached = self.cache.get(self.key)
        if self._fresh(cached, None):
            assert cached is not None
            return cached.value
        return self.refresh(stale=None)

    def refresh(self, stale: Secret | None) -> Secret:
        """Fetch a new token unless another caller already replaced ``stale``."""
        with _thread_lock(self.key):
            outer = self.lock_factory(self.key) if self.lock_factory else contextlib.nullcontext()
            with outer:
                cached = self.cache.get(self.key)
                if self._fresh(cached, stale):
                    assert cached is not None
                    return cached.value
                token, expires_in = self._fetch()
                margin = min(REFRESH_MARGIN, expires_in / 2)
                fresh = CachedToken(Secret(token), self.clock() + expires_in - margin)
                self.cache.set(self.key, fresh)
                return fresh.value

    def invalidate(self) -> None:
        self.cache.delete(self.key)

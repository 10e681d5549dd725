"""Which failures are outages of a dependency (the database, its disk, the
broker) rather than bugs or bad input.

An outage is retried later — by the client on a 503 with ``Retry-After``, by a
worker with back-off, by the scheduler's next tick — and is logged once per
interval with a count (``failure_log``), not with a traceback per item.
"""

from __future__ import annotations

import errno
from collections.abc import Iterator
from contextlib import contextmanager

import sqlalchemy.exc as sa_exc

from sopflow.db import sqlite_disk_error

DATABASE, DISK, BROKER = "database", "disk", "broker"

_DISK_ERRNOS = {errno.ENOSPC, errno.EROFS, errno.EDQUOT, errno.EIO}


class DependencyUnavailable(Exception):
    """Raised where a step knows it cannot go on until ``dependency`` is back."""

    def __init__(self, dependency: str, detail: str = "") -> None:
        super().__init__(f"{dependency} unavailable{': ' + detail if detail else ''}")
        self.dependency = dependency


def dependency_of(exc: BaseException | None) -> str | None:
    """The dependency whose outage ``exc`` reports, or None for any other error."""
    seen = 0
    while exc is not None and seen < 5:  # an outage wrapped by a library still is one
        found = _classify(exc)
        if found:
            return found
        exc, seen = exc.__cause__ or exc.__context__, seen + 1
    return None


def _classify(exc: BaseException) -> str | None:
    if isinstance(exc, DependencyUnavailable):
        return exc.dependency
    if isinstance(exc, sa_exc.DBAPIError):
        if sqlite_disk_error(exc.orig if exc.orig is not None else exc):
            return DISK
        if isinstance(exc, (sa_exc.OperationalError, sa_exc.InterfaceError)) or exc.connection_invalidated:
            return DATABASE
        return None
    if isinstance(exc, sa_exc.TimeoutError):  # no pooled connection came free: the database is stuck
        return DATABASE
    if isinstance(exc, OSError) and exc.errno in _DISK_ERRNOS:
        return DISK
    module = type(exc).__module__
    if module.startswith(("redis", "dramatiq")) and type(exc).__name__ in (
        "ConnectionError",
        "TimeoutError",
        "BusyLoadingError",
        "ConnectionClosed",
        "ReadOnlyError",
    ):
        return BROKER
    return None


@contextmanager
def retried_later(on_outage: object = None) -> Iterator[None]:
    """Inside a Dramatiq actor: an outage becomes ``dramatiq.Retry`` (retried with
    back-off, not logged as an error with a traceback); ``on_outage(exc, dependency)``
    is told first, to log it once per interval."""
    import dramatiq

    try:
        yield
    except dramatiq.Retry:
        raise
    except Exception as exc:
        dependency = dependency_of(exc)
        if dependency is None:
            raise
        if callable(on_outage):
            on_outage(exc, dependency)
        raise dramatiq.Retry(f"{dependency} unavailable") from exc

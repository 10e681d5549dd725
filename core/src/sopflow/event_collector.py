"""Collect the events a unit of work creates, so they can be announced (plugins'
``on_event``, the evaluate step) after its transactions commit.

Asking the database "which events are newer than id X" races with concurrent
writers (ids commit out of order); watching the session's flushes does not.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from sqlalchemy import event as sa_event
from sqlalchemy.orm import Session

_bucket: ContextVar[list[Any] | None] = ContextVar("sopflow_new_events", default=None)


@contextmanager
def collecting() -> Iterator[list[Any]]:
    """Within the block, every ``Event`` row flushed by this thread is appended."""
    token = _bucket.set([])
    try:
        yield _bucket.get()  # type: ignore[misc]
    finally:
        _bucket.reset(token)


@sa_event.listens_for(Session, "after_flush")
def _remember_new_events(session: Session, _context: Any) -> None:
    bucket = _bucket.get()
    if bucket is None:
        return
    from sopflow.models import Event

    bucket.extend(obj for obj in session.new if isinstance(obj, Event))


def collect(event: Any) -> None:
    """Add an event written without the ORM (a Core insert: ``engine.outcomes``)
    to the current block's list; it needs the attributes ``event_to_dict`` reads
    and ``tenant_id``."""
    bucket = _bucket.get()
    if bucket is not None:
        bucket.append(event)

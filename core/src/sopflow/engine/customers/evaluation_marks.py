"""The evaluate step's own outbox: an event row with ``evaluated_at`` NULL is
work still to do.

Ingest stores the event and that NULL in one transaction, so whatever a request
acknowledged will be evaluated even if the broker loses (or never got) the
evaluate message.  The evaluate step sets the mark first thing in the
transaction that holds its effects: a second evaluation of the same event (a
re-sent message, the sweep racing a worker) finds it set and does nothing.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Session

from sopflow.models import Event

_EV = Event.__table__


def mark_evaluated(session: Session, event_id: int, now: datetime) -> bool:
    """Take the event's evaluation for this transaction; False when it was done
    already.  On Postgres the row lock makes a concurrent evaluation wait for
    this one's commit and then find the mark."""
    done = session.execute(
        sa.update(_EV).where(_EV.c.id == event_id, _EV.c.evaluated_at.is_(None)).values(evaluated_at=now)
    )
    return done.rowcount == 1


def unevaluated(
    session: Session, received_before: datetime, limit: int, skip: Collection[int] = ()
) -> list[Event]:
    """Events still waiting for evaluation that were received before ``received_before``,
    oldest first (``skip``: ids not to try again yet)."""
    query = (
        sa.select(Event)
        .where(Event.evaluated_at.is_(None), Event.received_at < received_before)
        .order_by(Event.received_at, Event.id)
        .limit(limit)
    )
    if skip:
        query = query.where(Event.id.not_in(list(skip)))
    return list(session.scalars(query))


def count_unevaluated(session: Session) -> int:
    """How many events still wait for their evaluate step (for health and tests)."""
    return (
        session.scalar(sa.select(sa.func.count()).select_from(_EV).where(_EV.c.evaluated_at.is_(None))) or 0
    )

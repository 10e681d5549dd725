"""Touches on the hot path (claim, prepare, record) as rows, not ORM objects.

Loading, tracking and flushing a touch object cost more than everything else
those transactions do for it (profiles in docs/benchmarks.md).  A transaction
reads the touches it works on as rows, builds one ``change`` per touch it
alters (``change_of``), and writes them all with one executemany ``UPDATE``
(``write``), which checks each touch's move against the one table of allowed
moves (``sopflow.models.touch_status``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from sopflow.models import Touch
from sopflow.models.touch_status import TRANSITIONS, IllegalTouchMove

TOUCHES = Touch.__table__
#: the columns a hot-path transaction may change
CHANGED = (
    "status",
    "due_at",
    "lease_until",
    "attempts",
    "deferrals",
    "defer_reason",
    "outcome",
    "sent_at",
    "started_at",
)
#: what it reads: the changeable columns and what identifies the touch
READ = (*CHANGED, "id", "tenant_id", "sop_id", "enrollment_id", "customer_id", "step_index", "planned_at")

_UPDATE = (
    sa.update(TOUCHES)
    .where(TOUCHES.c.id == sa.bindparam("touch_id"))
    .values({c: sa.bindparam(c) for c in CHANGED})
)


def select_rows(*where: Any) -> sa.Select:
    """The touches matching ``where`` as rows of the ``READ`` columns."""
    return sa.select(*(TOUCHES.c[c] for c in READ)).where(*where)


def change_of(row: Any) -> dict[str, Any]:
    """The touch's columns as they are; set the new values on it, then ``write`` it.
    ``was`` keeps the status it had, so ``write`` can check the move (the UPDATE
    ignores the key)."""
    change = {c: getattr(row, c) for c in CHANGED}
    change["touch_id"] = row.id
    change["was"] = row.status
    return change


def write(session: Session, changes: Sequence[dict[str, Any]]) -> None:
    """Write ``changes`` (from ``change_of``) with one executemany UPDATE.

    Raises ``IllegalTouchMove`` (and writes nothing) when a change moves its
    touch along a move the table of touch states does not allow."""
    if not changes:
        return
    for change in changes:
        if change["status"] not in TRANSITIONS.get(change["was"], ()):
            raise IllegalTouchMove(change["was"], change["status"], change["touch_id"])
    session.execute(_UPDATE, list(changes))

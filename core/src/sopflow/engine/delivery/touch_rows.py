"""Touches on the hot path (claim, prepare, record) as rows, not ORM objects.

Loading, tracking and flushing a touch object cost more than everything else
those transactions do for it (profiles in docs/benchmarks.md).  A transaction
reads the touches it works on as rows, builds one ``change`` per touch it
alters (``change_of``), and writes them with one executemany ``UPDATE`` per
set of changed columns (``write``), which checks each touch's move against the
one table of allowed moves (``sopflow.models.touch_status``).

Only the columns that changed are written: SQLite maintains every index over a
column named in ``SET`` whether or not its value changed (``due_at`` is in the
claim index), and every bound value costs a conversion.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
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


@functools.cache
def _update(columns: tuple[str, ...]) -> sa.Update:
    """The UPDATE of these columns (built once per set: building costs more than running)."""
    return (
        sa.update(TOUCHES)
        .where(TOUCHES.c.id == sa.bindparam("touch_id"))
        .values({c: sa.bindparam(c) for c in columns})
    )


def select_rows(*where: Any) -> sa.Select:
    """The touches matching ``where`` as rows of the ``READ`` columns."""
    return sa.select(*(TOUCHES.c[c] for c in READ)).where(*where)


def change_of(row: Any) -> dict[str, Any]:
    """The touch's columns as they are; set the new values on it, then ``write`` it.
    ``was`` keeps the status it had, so ``write`` can check the move; ``_row`` the
    row, so it writes only what changed (neither key is written)."""
    change = {c: getattr(row, c) for c in CHANGED}
    change["touch_id"] = row.id
    change["was"] = row.status
    change["_row"] = row
    return change


def write(session: Session, changes: Sequence[dict[str, Any]]) -> None:
    """Write ``changes`` (from ``change_of``): one executemany UPDATE per set of
    changed columns; a change that changed nothing is not written.

    Raises ``IllegalTouchMove`` (and writes nothing) when a change moves its
    touch along a move the table of touch states does not allow."""
    by_columns: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    for change in changes:
        if change["status"] not in TRANSITIONS.get(change["was"], ()):
            raise IllegalTouchMove(change["was"], change["status"], change["touch_id"])
        row = change["_row"]
        columns = tuple(c for c in CHANGED if change[c] != getattr(row, c))
        if columns:
            # only these keys: SQLAlchemy adds any other key naming a column to the SET
            values = {c: change[c] for c in columns}
            values["touch_id"] = change["touch_id"]
            by_columns.setdefault(columns, []).append(values)
    for columns, group in by_columns.items():
        session.execute(_update(columns), group)


def cancelled_with(enrollment_status: str, outcome: Mapping[str, Any] | None) -> bool:
    """Whether a due touch is cancelled because its enrolment is no longer active.
    A touch sent again to its customer's new owner (``outcome.readdressed``) is a
    step already dispatched: its enrolment may have completed meanwhile (a touch
    waiting on staff counts as done), and it is still sent."""
    if enrollment_status == "active":
        return False
    return not (enrollment_status == "completed" and (outcome or {}).get("readdressed"))

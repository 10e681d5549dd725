"""Give back claims whose hand-off to a worker failed or was lost.

A claim is a promise that a deliver message is on its way.  When sending that
message fails, or the broker restarts and forgets its queue, the promise is
void: the touch goes back to ``scheduled`` (still due, its daily-cap slot kept
through ``cap_day``) so the next claim round hands it out again — instead of
waiting out the whole lease and counting against ``SOPFLOW_MAX_IN_FLIGHT``
meanwhile.

Only claims no worker has taken (``started_at`` NULL) are released.  A claim a
worker started stays under its lease: the worker may be calling the channel,
and a non-idempotent send must never be repeated blindly.  Should a message
for a released touch still turn up, the worker finds the touch no longer
``claimed`` by it (or claimed again and prepared once) and does nothing twice.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from sqlalchemy.orm import Session

from sopflow.engine.delivery import touch_rows

_T = touch_rows.TOUCHES
_ONE_ATTEMPT_LESS = sa.case((_T.c.attempts > 0, _T.c.attempts - 1), else_=0)


def _release(session: Session, *where: sa.ColumnElement[bool]) -> int:
    result = session.execute(
        sa.update(_T)
        .where(_T.c.status == "claimed", _T.c.started_at.is_(None), *where)
        # the claim counted an attempt that never happened
        .values(
            status="scheduled",
            lease_until=None,
            attempts=_ONE_ATTEMPT_LESS,
        )
        .execution_options(synchronize_session=False)
    )
    return result.rowcount or 0


def release_claims(session: Session, touch_ids: Sequence[int]) -> int:
    """The hand-off of these claims failed: release the ones no worker took."""
    if not touch_ids:
        return 0
    return _release(session, _T.c.id.in_(list(touch_ids)))


def release_unstarted(session: Session) -> int:
    """The broker lost its queue: release every claim no worker has taken."""
    return _release(session)

"""Each channel account's recent delivery health, read from the touches' own
outcomes: what it sent in the last day, what failed or waits for review
because of one of its calls, what it is retrying now, and the last error.

Every send's result names the account it went through and a touch cut short
names the account of the call that cut it (``sends.call_sends``), so no
second ledger is written on the hot path; this read is for people (the
console's channels page), bounded by ``LIMIT`` rows per kind.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import attrs
import sqlalchemy as sa
from sqlalchemy.orm import Session

from sopflow.models import Touch
from sopflow.models.touch_status import TouchStatus

#: how far back "recent" reaches
WINDOW = timedelta(hours=24)
#: rows read per kind at most (the newest): a health read, not a report
LIMIT = 5000
#: a sent touch was due at most this long before it was sent (deferrals), for the index
DUE_SLACK = timedelta(days=2)


@attrs.define
class AccountHealth:
    """One account's last day: counts, the last send and the last error."""

    sent: int = 0
    failed: int = 0
    retrying: int = 0
    last_sent_at: datetime | None = None
    last_error: str | None = None
    last_error_at: datetime | None = None

    @property
    def state(self) -> str:
        """``bad`` (only failures), ``warn`` (failures or retries beside sends),
        ``ok`` (sends, nothing wrong) or ``idle`` (nothing in the window)."""
        if self.failed and not self.sent:
            return "bad"
        if self.failed or self.retrying:
            return "warn"
        return "ok" if self.sent else "idle"


def account_health(session: Session, tenant_id: int, now: datetime) -> dict[int, AccountHealth]:
    """Account id → its health over the last ``WINDOW`` (accounts with no touch are absent)."""
    since = now - WINDOW
    health: dict[int, AccountHealth] = {}

    def of(account_id: Any) -> AccountHealth | None:
        return health.setdefault(int(account_id), AccountHealth()) if account_id else None

    sent = session.execute(
        sa.select(Touch.sent_at, Touch.outcome)
        .where(
            Touch.tenant_id == tenant_id,
            Touch.status.in_((TouchStatus.SENT, TouchStatus.PENDING)),
            Touch.due_at >= since - DUE_SLACK,
            Touch.sent_at >= since,
        )
        .order_by(Touch.sent_at.desc())
        .limit(LIMIT)
    )
    for sent_at, outcome in sent:
        for account_id in {r.get("account_id") for r in (outcome or {}).get("results", [])}:
            if (h := of(account_id)) is not None:
                h.sent += 1
                h.last_sent_at = max(h.last_sent_at or sent_at, sent_at)
    cut_short = session.execute(
        sa.select(Touch.status, Touch.due_at, Touch.outcome)
        .where(
            Touch.tenant_id == tenant_id,
            sa.or_(
                sa.and_(Touch.status.in_((TouchStatus.FAILED, TouchStatus.REVIEW)), Touch.due_at >= since),
                sa.and_(Touch.status == TouchStatus.SCHEDULED, Touch.attempts > 0),
            ),
        )
        .order_by(Touch.due_at.desc())
        .limit(LIMIT)
    )
    for status, due_at, outcome in cut_short:
        h = of((outcome or {}).get("account_id"))
        if h is None:
            continue
        if status == TouchStatus.SCHEDULED:
            h.retrying += 1
        else:
            h.failed += 1
        if h.last_error_at is None or due_at > h.last_error_at:
            h.last_error, h.last_error_at = (outcome or {}).get("reason"), due_at
    return health

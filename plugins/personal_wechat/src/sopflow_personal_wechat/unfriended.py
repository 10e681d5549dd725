"""Contacts who deleted an account, from the first sign of it to their ``customer.churned``.

Neither gateway pushes a deletion: it shows when a send fails because the
contact is no longer a friend (a Wechaty puppet's send error), or as WeChat's
notice in that contact's chat after a send (WeChatFerry: 开启了朋友验证，你还不是
他（她）朋友).  The first happens inside a worker's send, where no host is at hand,
so whoever sees it writes a row here (``personal_wechat_unfriended``, shared by
every worker through the database) and the intake turns each row into one
``customer.churned``, marking it reported.  A later send to that contact fails
at once without a gateway call, and accepting the contact's friend request
again removes the row, so a second deletion is a second churn.
"""

from __future__ import annotations

import hashlib
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from sopflow_personal_wechat.store import unfriended


def record(engine: sa.Engine, key: str, contact_id: str, at: float, reason: str) -> bool:
    """Note that ``contact_id`` deleted account ``key``; whether this was news."""
    try:
        with engine.begin() as c:
            c.execute(
                sa.insert(unfriended).values(
                    account_key=key,
                    contact_id=contact_id,
                    detected_at=at,
                    reason=reason[:300],
                    reported=False,
                )
            )
    except IntegrityError:  # known already (another worker, a replayed notice)
        return False
    return True


def known(engine: sa.Engine, key: str, contact_id: str) -> bool:
    """Whether ``contact_id`` is known to have deleted account ``key``."""
    with engine.connect() as c:
        found = c.execute(
            sa.select(unfriended.c.contact_id).where(
                unfriended.c.account_key == key, unfriended.c.contact_id == contact_id
            )
        ).first()
    return found is not None


def unreported(engine: sa.Engine, key: str) -> list[dict[str, Any]]:
    """The rows of account ``key`` whose ``customer.churned`` is not out yet, oldest first."""
    with engine.connect() as c:
        rows = c.execute(
            sa.select(unfriended)
            .where(unfriended.c.account_key == key, unfriended.c.reported.is_(False))
            .order_by(unfriended.c.detected_at)
        ).mappings()
        return [dict(r) for r in rows]


def mark_reported(engine: sa.Engine, key: str, contact_id: str) -> None:
    """The row's ``customer.churned`` was ingested."""
    with engine.begin() as c:
        c.execute(
            sa.update(unfriended)
            .where(unfriended.c.account_key == key, unfriended.c.contact_id == contact_id)
            .values(reported=True)
        )


def forget(engine: sa.Engine, key: str, contact_id: str) -> None:
    """The contact is a friend of account ``key`` again."""
    with engine.begin() as c:
        c.execute(
            sa.delete(unfriended).where(
                unfriended.c.account_key == key, unfriended.c.contact_id == contact_id
            )
        )


def churn_key(key: str, contact_id: str, detected_at: float) -> str:
    """The idempotency key of the row's ``customer.churned``: one per deletion."""
    account = hashlib.sha256(key.encode()).hexdigest()[:16]
    return f"personal_wechat:churned:{account}:{contact_id}:{int(detected_at)}"

"""Contacts who deleted an account, from the first sign of it to their ``customer.churned``.

Neither gateway pushes a deletion: it shows when a send fails because the
contact is no longer a friend (a Wechaty puppet's send error), or as WeChat's
notice in that contact's chat after a send (WeChatFerry: 开启了朋友验证，你还不是
他（她）朋友).  The first happens inside a worker's send, where no host is at hand,
so whoever sees it writes a row here (``personal_wechat_unfriended``, shared by
every worker through the database) and the intake turns each row into one
``customer.churned``, marking it reported.  A later send to that contact fails
at once without a gateway call.  Accepting the contact's friend request again
marks the row (``friend_again_at``): sends go to them again, a later deletion is
a second churn, and a replayed notice from before the re-add is not.
"""

from __future__ import annotations

import hashlib
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from sopflow_personal_wechat.store import unfriended


def record(engine: sa.Engine, key: str, contact_id: str, at: float, reason: str) -> bool:
    """Note that ``contact_id`` deleted account ``key`` (seen at ``at``); whether this was
    news.  A sign from before the contact became a friend again (a replayed old notice)
    is not news."""
    where = (unfriended.c.account_key == key, unfriended.c.contact_id == contact_id)
    fresh = {"detected_at": at, "reason": reason[:300], "reported": False, "friend_again_at": None}
    try:
        with engine.begin() as c:
            row = c.execute(sa.select(unfriended.c.friend_again_at).where(*where)).first()
            if row is None:
                c.execute(sa.insert(unfriended).values(account_key=key, contact_id=contact_id, **fresh))
                return True
            if row.friend_again_at is None or at <= row.friend_again_at:
                return False  # known already (another worker, a replayed notice), or older
            # deleted again after being a friend again (compare-and-set: one worker wins)
            changed = c.execute(
                sa.update(unfriended)
                .where(*where, unfriended.c.friend_again_at == row.friend_again_at)
                .values(**fresh)
            ).rowcount
            return changed == 1
    except IntegrityError:  # another worker inserted it first
        return False


def known(engine: sa.Engine, key: str, contact_id: str) -> bool:
    """Whether ``contact_id`` is known to have deleted account ``key`` (and not added it since)."""
    with engine.connect() as c:
        found = c.execute(
            sa.select(unfriended.c.contact_id).where(
                unfriended.c.account_key == key,
                unfriended.c.contact_id == contact_id,
                unfriended.c.friend_again_at.is_(None),
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


def forget(engine: sa.Engine, key: str, contact_id: str, at: float) -> None:
    """The contact is a friend of account ``key`` again (since ``at``): sends go to them,
    and only a sign of deletion from after ``at`` is a new deletion."""
    with engine.begin() as c:
        c.execute(
            sa.update(unfriended)
            .where(unfriended.c.account_key == key, unfriended.c.contact_id == contact_id)
            .values(friend_again_at=at, reported=True)
        )


def churn_key(key: str, contact_id: str, detected_at: float) -> str:
    """The idempotency key of the row's ``customer.churned``: one per deletion."""
    account = hashlib.sha256(key.encode()).hexdigest()[:16]
    return f"personal_wechat:churned:{account}:{contact_id}:{int(detected_at)}"

"""Apply shop messages to the fact table and derive the ``orders.*`` fields.

Each column group of an order (buyer, payment, status) and each refund keeps
the value of the message with the highest *rank* — ``(version, msg_id)``,
compared as one zero-padded string — that carries it.  A maximum does not care
in which order its inputs came or how often, so a refund before its payment,
the same message twice or an older ``version`` after a newer one leave the same
rows as the in-order sequence (``tests/test_order_facts_property.py``).

Callers hold the source account's lock (``orders_plugin``) so two deliveries
for one shop take turns; the functions take a SQLAlchemy ``Connection``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from sopflow_forms.order_model import OrderMessage
from sopflow_forms.order_store import messages, orders, refunds

#: derived, read-only customer fields (amounts in fen, instants in UTC)
FIELD_KEYS = (
    "orders.count",
    "orders.total_spend",
    "orders.first_at",
    "orders.last_at",
    "orders.refunded_total",
)


def rank(msg: OrderMessage) -> str:
    return f"{msg.version:020d}:{msg.msg_id}"


def apply(
    conn: Any, tenant_id: int, account_id: int, msg: OrderMessage, now: int
) -> set[tuple[str, str]] | None:
    """Record ``msg``; ``None`` when its id was seen before (nothing changes), else the
    buyer identities whose derived fields may have changed (old and new buyer)."""
    seen = conn.execute(
        sa.select(messages.c.msg_id).where(
            messages.c.account_id == account_id, messages.c.msg_id == msg.msg_id
        )
    ).first()
    if seen is not None:
        return None
    conn.execute(
        messages.insert().values(
            account_id=account_id, msg_id=msg.msg_id, tenant_id=tenant_id, order_id=msg.order_id, seen_at=now
        )
    )
    before = _order(conn, account_id, msg.order_id)
    if before is None:
        conn.execute(
            orders.insert().values(account_id=account_id, order_id=msg.order_id, tenant_id=tenant_id)
        )
        before = _order(conn, account_id, msg.order_id)
    _apply_order(conn, account_id, msg, before)
    if msg.refund_id:
        _apply_refund(conn, tenant_id, account_id, msg)
    after = _order(conn, account_id, msg.order_id)
    return {b for b in (_buyer(before), _buyer(after)) if b is not None}


def _order(conn: Any, account_id: int, order_id: str) -> Any:
    return conn.execute(
        sa.select(orders).where(orders.c.account_id == account_id, orders.c.order_id == order_id)
    ).first()


def _buyer(row: Any) -> tuple[str, str] | None:
    if row is None or row.identity_channel is None:
        return None
    return (row.identity_channel, row.identity_external_id)


def _newer(current: str | None, candidate: str) -> bool:
    return current is None or candidate > current


def _apply_order(conn: Any, account_id: int, msg: OrderMessage, row: Any) -> None:
    r = rank(msg)
    values: dict[str, Any] = {}
    if msg.identity is not None and _newer(row.identity_rank, r):
        values.update(
            identity_channel=msg.identity[0],
            identity_external_id=msg.identity[1],
            identity_rank=r,
            display_name=msg.display_name,
        )
    if msg.paid_fen is not None and _newer(row.paid_rank, r):
        values.update(paid_fen=msg.paid_fen, paid_at=msg.paid_at, paid_rank=r)
    if msg.status is not None and _newer(row.status_rank, r):
        values.update(status=msg.status, status_rank=r)
    if values:
        conn.execute(
            orders.update()
            .where(orders.c.account_id == account_id, orders.c.order_id == msg.order_id)
            .values(**values)
        )


def _apply_refund(conn: Any, tenant_id: int, account_id: int, msg: OrderMessage) -> None:
    where = (
        refunds.c.account_id == account_id,
        refunds.c.order_id == msg.order_id,
        refunds.c.refund_id == msg.refund_id,
    )
    row = conn.execute(sa.select(refunds).where(*where)).first()
    r = rank(msg)
    if row is None:
        conn.execute(
            refunds.insert().values(
                account_id=account_id,
                order_id=msg.order_id,
                refund_id=msg.refund_id,
                tenant_id=tenant_id,
                state=msg.refund_state or "pending",
                rank=r,
                amount_fen=msg.refund_fen,
                amount_rank=None if msg.refund_fen is None else r,
            )
        )
        return
    values: dict[str, Any] = {}
    if r > row.rank:
        values.update(state=msg.refund_state or "pending", rank=r)
    if msg.refund_fen is not None and _newer(row.amount_rank, r):
        values.update(amount_fen=msg.refund_fen, amount_rank=r)
    if values:
        conn.execute(refunds.update().where(*where).values(**values))


def _iso(ts: int | None) -> str | None:
    return None if ts is None else datetime.fromtimestamp(ts, UTC).isoformat()


def derived_fields(conn: Any, tenant_id: int, identity: tuple[str, str]) -> dict[str, Any]:
    """The ``orders.*`` fields of the buyer ``identity`` over every shop of the tenant.

    ``orders.count``/``total_spend``/``first_at``/``last_at``: the paid orders
    (a paid message seen, whatever happened after), their paid amounts in fen and
    the first and last payment instants; ``orders.refunded_total``: the amounts
    of the buyer's refunds whose latest state is ``success``, in fen."""
    buyer = (
        orders.c.tenant_id == tenant_id,
        orders.c.identity_channel == identity[0],
        orders.c.identity_external_id == identity[1],
    )
    paid = conn.execute(
        sa.select(
            sa.func.count(),
            sa.func.coalesce(sa.func.sum(orders.c.paid_fen), 0),
            sa.func.min(orders.c.paid_at),
            sa.func.max(orders.c.paid_at),
        ).where(*buyer, orders.c.paid_fen.is_not(None))
    ).one()
    refunded = conn.execute(
        sa.select(sa.func.coalesce(sa.func.sum(refunds.c.amount_fen), 0))
        .select_from(
            refunds.join(
                orders,
                sa.and_(orders.c.account_id == refunds.c.account_id, orders.c.order_id == refunds.c.order_id),
            )
        )
        .where(*buyer, refunds.c.state == "success")
    ).scalar_one()
    return {
        "orders.count": int(paid[0]),
        "orders.total_spend": int(paid[1]),
        "orders.first_at": _iso(paid[2]),
        "orders.last_at": _iso(paid[3]),
        "orders.refunded_total": int(refunded),
    }


def order_events(conn: Any, account_id: int, order_id: str) -> list[dict[str, Any]]:
    """The semantic events the order's facts now imply, each with a key that names
    the fact (so re-deriving them after a later message yields duplicates, not copies)."""
    row = _order(conn, account_id, order_id)
    if row is None or row.identity_channel is None:
        return []  # no buyer known yet: the events wait for the message that names one
    base = f"orders:{account_id}:{order_id}"
    out: list[dict[str, Any]] = []
    if row.paid_fen is not None:
        out.append(
            {"type": "order.paid", "key": f"{base}:paid", "amount_fen": row.paid_fen, "at": row.paid_at}
        )
    for ref in conn.execute(
        sa.select(refunds)
        .where(
            refunds.c.account_id == account_id, refunds.c.order_id == order_id, refunds.c.state == "success"
        )
        .order_by(refunds.c.refund_id)
    ):
        out.append(
            {
                "type": "order.refunded",
                "key": f"{base}:refund:{ref.refund_id}",
                "amount_fen": ref.amount_fen or 0,
                "refund_id": ref.refund_id,
            }
        )
    if row.status == "closed":
        out.append({"type": "order.closed", "key": f"{base}:closed"})
    return out


def snapshot(conn: Any, tenant_id: int) -> dict[str, Any]:
    """Every fact row of a tenant, for comparing two histories (tests, support)."""
    cols_o = [c for c in orders.c if not c.name.endswith("_rank")]
    return {
        "orders": sorted(
            tuple(r) for r in conn.execute(sa.select(*cols_o).where(orders.c.tenant_id == tenant_id))
        ),
        "refunds": sorted(
            tuple(r)
            for r in conn.execute(
                sa.select(
                    refunds.c.account_id,
                    refunds.c.order_id,
                    refunds.c.refund_id,
                    refunds.c.amount_fen,
                    refunds.c.state,
                ).where(refunds.c.tenant_id == tenant_id)
            )
        ),
    }

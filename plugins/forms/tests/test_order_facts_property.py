"""Order facts do not depend on arrival: any permutation and duplication of a
shop's message sequence leaves the same facts, fields and events as the
in-order sequence (hypothesis, bounded)."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sopflow_forms import order_facts
from sopflow_forms.order_model import OrderMessage
from sopflow_forms.order_store import metadata

TENANT, ACCOUNT = 1, 7
BUYERS = [("phone", "+8613800000001"), ("phone", "+8613800000002"), ("youzan", "yz-open-3")]


def _order_history(
    n: int, buyer: tuple[str, str], pay_fen: int, refunds: list[int], closed: bool
) -> list[OrderMessage]:
    """One order's messages in the shop's order (versions increase): created, paid,
    shipped (repeats the payment), refunds requested then settled, maybe closed."""
    oid, v = f"E{n}", iter(range(1, 100))
    msgs = [
        OrderMessage(f"{oid}-create", oid, next(v), identity=buyer, status="wait_buyer_pay"),
        OrderMessage(
            f"{oid}-pay",
            oid,
            next(v),
            identity=buyer,
            status="trade_paid",
            paid_fen=pay_fen,
            paid_at=1_764_000_000 + n * 3600,
        ),
        OrderMessage(
            f"{oid}-ship",
            oid,
            next(v),
            identity=buyer,
            status="wait_buyer_confirm_goods",
            paid_fen=pay_fen,
            paid_at=1_764_000_000 + n * 3600,
        ),
    ]
    for i, fen in enumerate(refunds):
        rid = f"R{n}-{i}"
        msgs.append(
            OrderMessage(f"{rid}-ask", oid, next(v), refund_id=rid, refund_fen=fen, refund_state="pending")
        )
        state = "closed" if i % 2 else "success"  # every other refund is withdrawn
        msgs.append(OrderMessage(f"{rid}-end", oid, next(v), refund_id=rid, refund_state=state))
    if closed:
        msgs.append(OrderMessage(f"{oid}-close", oid, next(v), status="closed"))
    return msgs


histories = st.lists(
    st.tuples(
        st.sampled_from(BUYERS),
        st.integers(min_value=1, max_value=10**9),  # fen: up to ten million yuan
        st.lists(st.integers(min_value=1, max_value=10**6), max_size=3),
        st.booleans(),
    ),
    min_size=1,
    max_size=4,
)


def _run(messages: list[OrderMessage]) -> dict[str, Any]:
    engine = sa.create_engine("sqlite://")
    metadata.create_all(engine)
    with engine.begin() as conn:
        for msg in messages:
            order_facts.apply(conn, TENANT, ACCOUNT, msg, now=0)
        result = {
            "facts": order_facts.snapshot(conn, TENANT),
            "fields": {b: order_facts.derived_fields(conn, TENANT, b) for b in BUYERS},
            "events": sorted(
                (e["type"], e["key"], e.get("amount_fen"))
                for oid in {m.order_id for m in messages}
                for e in order_facts.order_events(conn, ACCOUNT, oid)
            ),
        }
    engine.dispose()
    return result


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(histories, st.data())
def test_any_permutation_with_duplicates_gives_the_in_order_facts(
    spec: list[Any], data: st.DataObject
) -> None:
    in_order = [
        m
        for n, (b, fen, refunds, closed) in enumerate(spec)
        for m in _order_history(n, b, fen, refunds, closed)
    ]
    extra = data.draw(st.lists(st.sampled_from(in_order), max_size=len(in_order)), label="duplicates")
    shuffled = data.draw(st.permutations(in_order + extra), label="arrival")
    expected = _run(in_order)
    assert _run(shuffled) == expected
    # and the facts are the ones the history describes
    for buyer in BUYERS:
        mine = [(fen, refunds) for b, fen, refunds, _ in spec if b == buyer]
        fields = expected["fields"][buyer]
        assert fields["orders.count"] == len(mine)
        assert fields["orders.total_spend"] == sum(fen for fen, _ in mine)
        assert fields["orders.refunded_total"] == sum(
            f for _, rs in mine for i, f in enumerate(rs) if i % 2 == 0
        )


def test_duplicate_message_changes_nothing() -> None:
    engine = sa.create_engine("sqlite://")
    metadata.create_all(engine)
    msg = OrderMessage("m1", "E1", 1, identity=BUYERS[0], status="trade_paid", paid_fen=100, paid_at=1)
    with engine.begin() as conn:
        assert order_facts.apply(conn, TENANT, ACCOUNT, msg, now=0) == {BUYERS[0]}
        assert order_facts.apply(conn, TENANT, ACCOUNT, msg, now=0) is None
    engine.dispose()

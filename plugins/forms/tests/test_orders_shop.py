"""The generic shop webhook over real HTTP: HMAC-SHA256 of the raw body, dedupe
on ``id``, ``version`` ordering, bad input refused with a problem body."""

from __future__ import annotations

import logging

import pytest
from forms_support import SHOP_SECRET, LiveSopflow
from sopflow_forms.senders import post, shop_request

EMAIL = "ann@example.com"


@pytest.fixture
def shop(live: LiveSopflow) -> str:
    account = live.account("shop_webhook", {"shop": "sunscreen"}, {"signing_secret": SHOP_SECRET})
    return f"{live.base_url}/plugins/orders/shop/{account}"


def _send(url: str, message: dict) -> object:
    return post(url, *shop_request(SHOP_SECRET, message))


def test_signed_messages_become_events_and_fields(live: LiveSopflow, shop: str) -> None:
    paid = {
        "id": "e1",
        "type": "order.paid",
        "version": 1,
        "order_id": "A1",
        "amount": "0.10",
        "paid_at": "2026-12-01T10:00:00+08:00",
        "customer": {"email": "Ann@Example.com", "name": "Ann"},
    }
    assert _send(shop, paid).json() == {"status": "accepted"}
    assert _send(shop, paid).json() == {"status": "duplicate"}
    second = {**paid, "id": "e2", "order_id": "A2", "amount": "0.20", "paid_at": "2026-12-02T10:00:00+08:00"}
    _send(shop, second)
    refund = {
        "id": "e3",
        "type": "order.refunded",
        "version": 2,
        "order_id": "A2",
        "refund_id": "R1",
        "amount": "0.20",
    }
    _send(shop, refund)
    _send(shop, {"id": "e4", "type": "order.closed", "version": 3, "order_id": "A2"})
    fields = live.customer("email", EMAIL)["fields"]
    # 0.10 + 0.20 in fen is exactly 30, where floats would give 0.30000000000000004
    assert fields["orders.count"] == 2 and fields["orders.total_spend"] == 30
    assert fields["orders.refunded_total"] == 20
    assert fields["orders.first_at"] == "2026-12-01T02:00:00+00:00"
    assert fields["orders.last_at"] == "2026-12-02T02:00:00+00:00"
    assert sorted(e["type"] for e in live.events() if e["type"].startswith("order.")) == [
        "order.closed",
        "order.paid",
        "order.paid",
        "order.refunded",
    ]


def test_bad_amount_names_the_field_and_stores_nothing(live: LiveSopflow, shop: str) -> None:
    r = _send(
        shop,
        {
            "id": "e1",
            "type": "order.paid",
            "order_id": "A1",
            "amount": "1.005",
            "customer": {"phone": "+8613800000009"},
        },
    )
    assert r.status_code == 400 and "amount" in r.json()["detail"] and "two decimals" in r.json()["detail"]
    long_id = _send(shop, {"id": "e" * 129, "type": "order.closed", "order_id": "A1"})
    assert long_id.status_code == 400 and "msg_id: at most 128 characters" in long_id.json()["detail"]
    assert live.events() == []


def test_unsigned_or_forged_messages_are_refused(
    live: LiveSopflow, shop: str, caplog: pytest.LogCaptureFixture
) -> None:
    for tamper, status in (("missing", 401), ("wrong", 403), ("huge", 413)):
        headers, body = shop_request(
            SHOP_SECRET,
            {
                "id": "e1",
                "type": "order.paid",
                "order_id": "A1",
                "amount": "1.00",
                "customer": {"phone": "+8613800000009"},
            },
        )
        if tamper == "missing":
            del headers["X-Sopflow-Signature"]
        elif tamper == "wrong":
            headers["X-Sopflow-Signature"] = "sha256=" + "0" * 64
        else:
            body += b" " * (300 * 1024)
        with caplog.at_level(logging.WARNING, logger="sopflow_forms"):
            r = post(shop, headers, body)
        assert r.status_code == status and r.headers["content-type"].startswith("application/problem+json")
    assert live.events() == []
    assert caplog.text.count("provider=shop_webhook") == 3 and SHOP_SECRET not in caplog.text

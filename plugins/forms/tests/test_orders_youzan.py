"""有赞 pushes over real HTTP: signed pushes become order events and exact fields;
forged, unsigned and oversized pushes are refused with a problem body."""

from __future__ import annotations

import json
import logging

import pytest
from forms_support import YOUZAN_CLIENT_ID, YOUZAN_SECRET, LiveSopflow
from sopflow_forms.senders import post, youzan_refund_msg, youzan_request, youzan_trade_msg

PHONE = "+8613800000001"


@pytest.fixture
def shop(live: LiveSopflow) -> str:
    account = live.account("youzan", {"client_id": YOUZAN_CLIENT_ID}, {"client_secret": YOUZAN_SECRET})
    return f"{live.base_url}/plugins/orders/youzan/{account}"


def _push(url: str, **kw: object) -> object:
    return post(url, *youzan_request(YOUZAN_CLIENT_ID, YOUZAN_SECRET, **kw))  # type: ignore[arg-type]


def test_paid_push_becomes_order_paid_with_exact_fields(live: LiveSopflow, shop: str) -> None:
    r = _push(
        shop,
        msg_id="m1",
        type="trade_TradeBuyerPay",
        status="TRADE_PAID",
        version=1,
        msg=youzan_trade_msg("E1", "88.10", PHONE, pay_time="2026-12-01 10:00:00"),
    )
    assert r.status_code == 200 and r.json() == {"code": 0, "msg": "success"}
    [paid] = live.events("order.paid")
    assert paid["payload"]["amount"] == "88.10" and paid["payload"]["amount_fen"] == 8810
    assert paid["payload"]["order_id"] == "E1"
    fields = live.customer("phone", PHONE)["fields"]
    assert fields["orders.count"] == 1 and fields["orders.total_spend"] == 8810
    assert fields["orders.first_at"] == fields["orders.last_at"] == "2026-12-01T02:00:00+00:00"
    assert fields["orders.refunded_total"] == 0


def test_same_push_twice_is_one_event(live: LiveSopflow, shop: str) -> None:
    kw = dict(
        msg_id="m1",
        type="trade_TradeBuyerPay",
        status="TRADE_PAID",
        version=1,
        msg=youzan_trade_msg("E1", "10.00", PHONE),
    )
    assert _push(shop, **kw).status_code == 200
    assert _push(shop, **kw, send_count=1).status_code == 200  # a resend: same msg_id
    assert len(live.events("order.paid")) == 1
    assert live.customer("phone", PHONE)["fields"]["orders.total_spend"] == 1000


def test_refund_before_its_payment_and_an_older_version_late(live: LiveSopflow, shop: str) -> None:
    _push(
        shop,
        msg_id="r1",
        type="trade_refund_RefundSuccess",
        version=5,
        msg=youzan_refund_msg("E2", "R1", "30.00"),
    )
    assert live.events("order.refunded") == []  # no buyer known yet: it waits for the payment
    _push(shop, msg_id="c1", type="trade_TradeClose", status="TRADE_CLOSED", version=6, msg={"tid": "E2"})
    _push(
        shop,
        msg_id="p1",
        type="trade_TradeBuyerPay",
        status="TRADE_PAID",
        version=2,
        msg=youzan_trade_msg("E2", "100.00", PHONE),
    )
    # an older status arrives last: it must not reopen the closed order
    _push(
        shop,
        msg_id="s1",
        type="trade_TradeSellerShip",
        status="WAIT_BUYER_CONFIRM_GOODS",
        version=3,
        msg=youzan_trade_msg("E2", "100.00", PHONE),
    )
    fields = live.customer("phone", PHONE)["fields"]
    assert fields["orders.count"] == 1 and fields["orders.total_spend"] == 10000
    assert fields["orders.refunded_total"] == 3000
    assert [e["type"] for e in live.events() if e["type"].startswith("order.")] == [
        "order.paid",
        "order.refunded",
        "order.closed",
        "order.updated",
    ]
    [refunded] = live.events("order.refunded")
    assert refunded["payload"]["refund_id"] == "R1" and refunded["payload"]["amount_fen"] == 3000


def test_one_call_sender_for_scripts(live: LiveSopflow, shop: str) -> None:
    from sopflow_forms.senders import send_youzan_paid

    r = send_youzan_paid(
        shop, YOUZAN_CLIENT_ID, YOUZAN_SECRET, tid="E7", payment="12.34", phone=PHONE, msg_id="x1"
    )
    assert r.json() == {"code": 0, "msg": "success"}
    assert live.customer("phone", PHONE)["fields"]["orders.total_spend"] == 1234


def test_test_push_is_acknowledged_and_ignored(live: LiveSopflow, shop: str) -> None:
    r = _push(
        shop,
        msg_id="t1",
        type="trade_TradeBuyerPay",
        status="TRADE_PAID",
        version=1,
        test=True,
        msg=youzan_trade_msg("E9", "1.00", PHONE),
    )
    assert r.status_code == 200 and live.events() == []


BAD_PUSHES = [
    ("missing", 401, "Event-Sign header is missing"),
    ("wrong", 403, "Event-Sign does not match"),
    ("body", 403, "Event-Sign does not match"),
    ("huge", 413, "larger than"),
]


def test_bad_pushes_are_refused_and_logged_without_the_secret(
    live: LiveSopflow, shop: str, caplog: pytest.LogCaptureFixture
) -> None:
    for tamper, status, reason in BAD_PUSHES:
        headers, body = youzan_request(
            YOUZAN_CLIENT_ID,
            YOUZAN_SECRET,
            msg_id="m1",
            type="trade_TradeBuyerPay",
            status="TRADE_PAID",
            version=1,
            msg=youzan_trade_msg("E1", "1.00", PHONE),
        )
        if tamper == "missing":
            del headers["Event-Sign"]
        elif tamper == "wrong":
            headers["Event-Sign"] = "0" * 32
        elif tamper == "body":
            body = body.replace(b'"version":1', b'"version":9')
        else:
            body = body + b" " * (300 * 1024)
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger="sopflow_forms"):
            r = post(shop, headers, body)
        assert r.status_code == status, tamper
        assert r.headers["content-type"].startswith("application/problem+json")
        assert reason in r.json()["detail"] and r.json()["status"] == status
        [line] = [rec.getMessage() for rec in caplog.records if "inbound_rejected" in rec.getMessage()]
        assert "provider=youzan" in line and reason in line
        assert YOUZAN_SECRET not in caplog.text and YOUZAN_SECRET not in r.text
    assert live.events() == []


def test_secret_is_write_only_and_unknown_account_refused(live: LiveSopflow, shop: str) -> None:
    account_id = int(shop.rsplit("/", 1)[1])
    shown = live.api.get(f"/api/v1/channel-accounts/{account_id}")
    assert shown.status_code == 200 and YOUZAN_SECRET not in shown.text
    r = _push(
        shop.rsplit("/", 1)[0] + "/999999",
        msg_id="m1",
        type="trade_TradeBuyerPay",
        version=1,
        msg=youzan_trade_msg("E1", "1.00", PHONE),
    )
    assert r.status_code == 404 and json.loads(r.text)["title"] == "Not Found"


def test_account_without_its_secret_is_refused_at_save(live: LiveSopflow) -> None:
    made = live.api.post(
        "/api/v1/channel-accounts", json={"channel": "youzan", "name": "x", "config": {}, "secrets": {}}
    )
    assert made.status_code == 422
    assert "client_id" in made.text and "client_secret" in made.text

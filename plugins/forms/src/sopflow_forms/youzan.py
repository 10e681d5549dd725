"""有赞云 message pushes: verify ``Event-Sign``, decode ``msg``, normalise.

The push is a JSON envelope (``client_id, id, kdt_id, msg, msg_id, status, type,
version, test, …``) whose ``msg`` is URL-encoded JSON.  Authenticity is the
``Event-Sign`` header, ``MD5(client_id + raw body + client_secret)`` over the
bytes as received — checked before anything is parsed.  The legacy body
``sign`` (over ``msg`` only) is not accepted: it leaves the rest of the
envelope, ``version`` included, unsigned.
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime, timedelta, timezone
from typing import Any
from urllib.parse import unquote

from sopflow_forms.inbound import Rejected, header, parse_json, same
from sopflow_forms.money import to_fen
from sopflow_forms.order_model import OrderMessage

PROVIDER = "youzan"
#: trade statuses after payment (the envelope's ``status``)
PAID_STATUSES = frozenset(
    {
        "TRADE_PAID",
        "WAIT_SELLER_SEND_GOODS",
        "WAIT_BUYER_CONFIRM_GOODS",
        "TRADE_BUYER_SIGNED",
        "TRADE_SUCCESS",
    }
)
#: refund message types by the state they leave (``trade_refund_*`` and ``youzan_trade_Refund*``)
REFUND_SUCCESS = ("RefundSellerAgree", "RefundSuccess", "SysRefund")
REFUND_CLOSED = ("RefundClosed",)
#: 有赞 writes its times in China Standard Time without an offset
CST = timezone(timedelta(hours=8))
#: the reply 有赞's push demos give (an empty or other body makes it resend)
ACK = {"code": 0, "msg": "success"}


def event_sign(client_id: str, body: bytes, client_secret: str) -> str:
    """``Event-Sign`` as 有赞 computes it: MD5 hex of client_id + raw body + client_secret."""
    return hashlib.md5(client_id.encode() + body + client_secret.encode()).hexdigest()


def verify(headers_of: Any, body: bytes, client_id: str, client_secret: str) -> None:
    """Raise ``Rejected`` (401 missing, 403 wrong) unless ``Event-Sign`` matches."""
    given = header(headers_of, "Event-Sign")
    if not given:
        raise Rejected(401, "the Event-Sign header is missing")
    if not same(event_sign(client_id, body, client_secret), given):
        raise Rejected(403, "Event-Sign does not match MD5(client_id + body + client_secret)")


def _cst(text: Any) -> int | None:
    if not text:
        return None
    try:
        return int(datetime.strptime(str(text), "%Y-%m-%d %H:%M:%S").replace(tzinfo=CST).timestamp())
    except ValueError:
        return None


def decode_msg(envelope: dict[str, Any]) -> dict[str, Any]:
    raw = envelope.get("msg")
    if isinstance(raw, dict):  # the newer refund messages send an object
        return raw
    try:
        msg = json.loads(unquote(str(raw or "")))
    except ValueError:
        raise Rejected(400, "msg is not URL-encoded JSON") from None
    if not isinstance(msg, dict):
        raise Rejected(400, "msg is not a JSON object")
    return msg


def _buyer(info: dict[str, Any]) -> tuple[tuple[str, str] | None, str | None]:
    buyer = info.get("buyer_info") or {}
    name = (info.get("address_info") or {}).get("receiver_name") or None
    if buyer.get("buyer_phone"):
        return ("phone", str(buyer["buyer_phone"])), name
    for key in ("yz_open_id", "fans_id", "buyer_id"):
        if buyer.get(key):
            return ("youzan", str(buyer[key])), name
    return None, name


def parse(body: bytes) -> OrderMessage | None:
    """The normalised message of a verified push; ``None`` for a test push."""
    env = parse_json(body)
    if env.get("test") in (True, "true"):
        return None
    missing = [k for k in ("msg_id", "type", "msg") if not env.get(k)]
    if missing:
        raise Rejected(400, f"the push lacks {', '.join(missing)}")
    msg, kind = decode_msg(env), str(env["type"])
    try:
        version = int(env.get("version") or 0)
    except (TypeError, ValueError):
        raise Rejected(400, "version is not an integer") from None
    if "_Refund" in kind or kind.startswith("trade_refund_"):
        return _refund(env, msg, kind, version)
    return _trade(env, msg, version)


def _refund(env: dict[str, Any], msg: dict[str, Any], kind: str, version: int) -> OrderMessage:
    order_id, refund_id = str(msg.get("tid") or env.get("id") or ""), str(msg.get("refund_id") or "")
    if not order_id or not refund_id:
        raise Rejected(400, "a refund message needs tid and refund_id")
    state = "pending"
    if kind.endswith(REFUND_SUCCESS):
        state = "success"
    elif kind.endswith(REFUND_CLOSED):
        state = "closed"
    fee = msg.get("refunded_fee")
    try:
        fen = to_fen(fee, "msg.refunded_fee") if fee not in (None, "") else None
    except ValueError as exc:
        raise Rejected(400, str(exc)) from None
    return OrderMessage(
        msg_id=str(env["msg_id"]),
        order_id=order_id,
        version=version,
        refund_id=refund_id,
        refund_fen=fen,
        refund_state=state,
    )


def _trade(env: dict[str, Any], msg: dict[str, Any], version: int) -> OrderMessage:
    full = msg.get("full_order_info") or {}
    order_info = full.get("order_info") or {}
    order_id = str(order_info.get("tid") or msg.get("tid") or env.get("id") or "")
    if not order_id:
        raise Rejected(400, "a trade message needs id or tid")
    status = str(env.get("status") or order_info.get("status") or "")
    identity, name = _buyer(full)
    paid_fen = paid_at = None
    payment = (full.get("pay_info") or {}).get("payment")
    if (status in PAID_STATUSES or env["type"] == "trade_TradeBuyerPay") and payment not in (None, ""):
        try:
            paid_fen = to_fen(payment, "msg.full_order_info.pay_info.payment")
        except ValueError as exc:
            raise Rejected(400, str(exc)) from None
        paid_at = _cst(order_info.get("pay_time")) or _cst(order_info.get("update_time"))
    return OrderMessage(
        msg_id=str(env["msg_id"]),
        order_id=order_id,
        version=version,
        identity=identity,
        status="closed" if status == "TRADE_CLOSED" else (status.lower() or None),
        paid_fen=paid_fen,
        paid_at=paid_at,
        display_name=name,
    )

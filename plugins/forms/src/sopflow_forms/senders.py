"""Senders built from each provider's public spec, for tests and demos.

Each ``*_request`` function returns ``(headers, body)`` exactly as the provider
would send them (signature included); ``post`` sends them over real HTTP.
``youzan_trade_msg``/``youzan_refund_msg`` build the decoded ``msg`` bodies of
有赞's trade and refund messages.  A demo builds a correctly signed push with
one call::

    msg = youzan_trade_msg("E1", "88.00", "+8613800000000")
    post(url, *youzan_request(client_id, client_secret, msg_id="m1", type="trade_TradeBuyerPay",
                              status="TRADE_PAID", version=1, msg=msg))
"""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any
from urllib.parse import quote

import httpx

from sopflow_forms.shop_webhook import SIGNATURE_HEADER
from sopflow_forms.shop_webhook import signature as shop_signature
from sopflow_forms.youzan import event_sign

JSON = {"Content-Type": "application/json"}


def _dumps(doc: Any) -> bytes:
    return json.dumps(doc, ensure_ascii=False, separators=(",", ":")).encode()


def youzan_trade_msg(
    tid: str,
    payment: str | None = None,
    phone: str | None = None,
    pay_time: str = "2026-12-01 10:00:00",
    status: str = "TRADE_PAID",
) -> dict[str, Any]:
    """A trade message's ``msg`` (``full_order_info`` as 有赞's trade messages carry it)."""
    info: dict[str, Any] = {
        "order_info": {
            "tid": tid,
            "status": status,
            "pay_time": pay_time,
            "created": pay_time,
            "update_time": pay_time,
        }
    }
    if payment is not None:
        info["pay_info"] = {"payment": payment, "total_fee": payment, "post_fee": "0.00"}
    if phone is not None:
        info["buyer_info"] = {"buyer_phone": phone, "fans_type": 1}
    return {"full_order_info": info}


def youzan_refund_msg(tid: str, refund_id: str, refunded_fee: str) -> dict[str, Any]:
    return {
        "tid": tid,
        "refund_id": refund_id,
        "refunded_fee": refunded_fee,
        "refund_type": "REFUND_ONLY",
        "update_time": "2026-12-01 12:00:00",
        "oids": "1",
    }


def youzan_request(
    client_id: str,
    client_secret: str,
    *,
    msg_id: str,
    type: str,
    version: int,
    msg: dict[str, Any],
    status: str = "",
    kdt_id: int = 10001,
    id: str = "",
    send_count: int = 0,
    test: bool = False,
) -> tuple[dict[str, str], bytes]:
    """A 有赞云 push: the JSON envelope with ``msg`` URL-encoded, and ``Event-Sign``."""
    envelope = {
        "client_id": client_id,
        "id": id or msg.get("tid") or msg.get("full_order_info", {}).get("order_info", {}).get("tid", ""),
        "kdt_id": kdt_id,
        "kdt_name": "shop",
        "root_kdt_id": kdt_id,
        "head_kdt_id": kdt_id,
        "msg": quote(json.dumps(msg, ensure_ascii=False)),
        "msg_id": msg_id,
        "sendCount": send_count,
        "status": status,
        "type": type,
        "version": version,
        "test": test,
        "mode": 1,
    }
    body = _dumps(envelope)
    return {**JSON, "Event-Sign": event_sign(client_id, body, client_secret)}, body


def shop_request(secret: str, message: dict[str, Any]) -> tuple[dict[str, str], bytes]:
    """The generic shop webhook: the JSON message and its HMAC-SHA256 header."""
    body = _dumps(message)
    return {**JSON, SIGNATURE_HEADER: shop_signature(secret, body)}, body


def jiandaoyun_request(
    secret: str, payload: dict[str, Any], *, nonce: str, timestamp: int, deliver_id: str
) -> tuple[dict[str, str], bytes, dict[str, str]]:
    """简道云 数据推送: body, ``X-JDY-Signature`` = sha1 hex of ``nonce:body:secret:timestamp``,
    ``X-JDY-DeliverId``; the nonce and timestamp travel in the query (returned third)."""
    body = _dumps(payload)
    sig = hashlib.sha1(f"{nonce}:{body.decode()}:{secret}:{timestamp}".encode()).hexdigest()
    headers = {**JSON, "X-JDY-Signature": sig, "X-JDY-DeliverId": deliver_id}
    return headers, body, {"nonce": nonce, "timestamp": str(timestamp)}


def wjx_sign(activity: str, index: str, key: str) -> str:
    """问卷星 数据推送 ``sign`` = sha1(activity + index + 推送密钥) (``index`` is ``joinid``)."""
    return hashlib.sha1(f"{activity}{index}{key}".encode()).hexdigest()


def wjx_request(
    key: str, answers: dict[str, Any], *, activity: str, joinid: str
) -> tuple[dict[str, str], bytes]:
    doc = {
        "activity": activity,
        "name": "survey",
        "timetaken": "35",
        "submittime": "2026-12-01 10:00:00",
        "joinid": joinid,
        "totalvalue": "0",
        **answers,
    }
    doc["sign"] = wjx_sign(activity, joinid, key)
    return dict(JSON), _dumps(doc)


def tencent_wj_request(
    payload: dict[str, Any], *, event_id: str, action: str = "answer.create"
) -> tuple[dict[str, str], bytes]:
    """腾讯问卷 webhook: unsigned (the URL carries sopflow's secret)."""
    doc = {
        "id": event_id,
        "object": "Answer",
        "action": action,
        "created_at": "2026-12-01T10:00:00+08:00",
        "payload": payload,
    }
    return dict(JSON), _dumps(doc)


def jinshuju_request(form: str, entry: dict[str, Any]) -> tuple[dict[str, str], bytes]:
    """金数据 数据推送: unsigned (the URL carries sopflow's secret)."""
    return dict(JSON), _dumps({"form": form, "form_name": "survey", "entry": entry})


def post(
    url: str, headers: dict[str, str], body: bytes, params: dict[str, str] | None = None
) -> httpx.Response:
    """Send one request over real HTTP, as the provider would."""
    return httpx.post(url, content=body, headers=headers, params=params, timeout=10)


def hmac_hex(key: str, data: bytes) -> str:
    return hmac.new(key.encode(), data, hashlib.sha256).hexdigest()


def send_youzan_paid(
    url: str,
    client_id: str,
    client_secret: str,
    *,
    tid: str,
    payment: str,
    phone: str,
    msg_id: str,
    version: int = 1,
    pay_time: str = "2026-12-01 10:00:00",
) -> httpx.Response:
    """One call for scripts and demos: a correctly signed 有赞 ``trade_TradeBuyerPay`` push, sent."""
    msg = youzan_trade_msg(tid, payment, phone, pay_time=pay_time)
    return post(
        url,
        *youzan_request(
            client_id,
            client_secret,
            msg_id=msg_id,
            type="trade_TradeBuyerPay",
            status="TRADE_PAID",
            version=version,
            msg=msg,
        ),
    )


def form_link(
    public_url: str, account_id: int, signing_key: str, slug: str, customer_id: int, expires_at: int
) -> str:
    """One call for scripts and demos: the signed per-customer link ``{{ form_link(slug) }}`` renders."""
    from sopflow_forms.link_tokens import sign

    token = sign(signing_key, {"c": customer_id, "s": slug, "x": expires_at})
    return f"{public_url.rstrip('/')}/plugins/forms/f/{account_id}/{slug}?t={token}"

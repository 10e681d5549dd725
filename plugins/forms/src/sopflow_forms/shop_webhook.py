"""A generic signed order webhook, for any shop that can POST JSON.

The shop signs the raw body with HMAC-SHA256 under the account's secret and
sends ``X-Sopflow-Signature: sha256=<hex>``; the body is one message::

    {"id": "evt-1", "type": "order.paid", "version": 3, "order_id": "A1001",
     "amount": "88.00", "paid_at": "2026-12-01T10:00:00+08:00",
     "customer": {"phone": "+8613800000000", "name": "Ann"}}

``type`` is ``order.paid``, ``order.refunded`` (with ``refund_id`` and ``amount``)
or ``order.closed``; ``id`` is the dedupe key; ``version`` orders messages about
one order (higher wins; missing means 0); ``customer`` names the buyer by
``phone``, ``email`` or ``channel`` + ``external_id``.
"""

from __future__ import annotations

import hashlib
import hmac
from datetime import datetime
from typing import Any

from sopflow_forms.inbound import Rejected, header, parse_json, same
from sopflow_forms.money import to_fen
from sopflow_forms.order_model import OrderMessage

PROVIDER = "shop_webhook"
SIGNATURE_HEADER = "X-Sopflow-Signature"
TYPES = ("order.paid", "order.refunded", "order.closed")


def signature(secret: str, body: bytes) -> str:
    """The header value a shop sends: ``sha256=`` + HMAC-SHA256(secret, raw body) in hex."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def verify(request: Any, secret: str) -> None:
    given = header(request, SIGNATURE_HEADER)
    if not given:
        raise Rejected(401, f"the {SIGNATURE_HEADER} header is missing")
    if not same(signature(secret, request.body), given):
        raise Rejected(403, f"{SIGNATURE_HEADER} does not match HMAC-SHA256 of the body")


def _identity(customer: Any) -> tuple[tuple[str, str] | None, str | None]:
    if not isinstance(customer, dict):
        return None, None
    name = customer.get("name") or None
    for key in ("phone", "email"):
        if customer.get(key):
            return (key, str(customer[key]).strip().lower() if key == "email" else str(customer[key])), name
    if customer.get("channel") and customer.get("external_id"):
        return (str(customer["channel"]), str(customer["external_id"])), name
    return None, name


def _instant(value: Any, what: str) -> int | None:
    if value in (None, ""):
        return None
    try:
        when = datetime.fromisoformat(str(value))
    except ValueError:
        raise Rejected(400, f"{what}: give an ISO-8601 instant with an offset") from None
    if when.tzinfo is None:
        raise Rejected(400, f"{what}: give an ISO-8601 instant with an offset")
    return int(when.timestamp())


def parse(body: bytes) -> OrderMessage:
    doc = parse_json(body)
    problems = [k for k in ("id", "type", "order_id") if not doc.get(k)]
    if problems:
        raise Rejected(400, f"the message lacks {', '.join(problems)}")
    kind = doc["type"]
    if kind not in TYPES:
        raise Rejected(400, f"type: one of {', '.join(TYPES)}")
    try:
        version = int(doc.get("version") or 0)
        amount = to_fen(doc["amount"], "amount") if doc.get("amount") not in (None, "") else None
    except (TypeError, ValueError) as exc:
        raise Rejected(
            400, str(exc) if isinstance(exc, ValueError) and "amount" in str(exc) else "version: an integer"
        ) from None
    identity, name = _identity(doc.get("customer"))
    common = {
        "msg_id": str(doc["id"]),
        "order_id": str(doc["order_id"]),
        "version": version,
        "identity": identity,
        "display_name": name,
    }
    if kind == "order.paid":
        if amount is None:
            raise Rejected(400, 'amount: an order.paid message gives the paid amount in yuan, e.g. "88.00"')
        return OrderMessage(
            **common, status="paid", paid_fen=amount, paid_at=_instant(doc.get("paid_at"), "paid_at")
        )
    if kind == "order.refunded":
        if not doc.get("refund_id") or amount is None:
            raise Rejected(
                400, "refund_id and amount: an order.refunded message names the refund and its amount"
            )
        return OrderMessage(
            **common, refund_id=str(doc["refund_id"]), refund_fen=amount, refund_state="success"
        )
    return OrderMessage(**common, status="closed")

"""One shop message, normalised: what the fact table learns from it.

Both receivers (有赞 and the generic shop webhook) turn their payloads into an
``OrderMessage``; ``order_facts`` applies it.  Every attribute is optional but
``msg_id``/``order_id``/``version``: a close message knows only the status, a
refund message only the refund.
"""

from __future__ import annotations

import attrs

#: Refund states the fact table keeps; only ``success`` counts in ``orders.refunded_total``.
REFUND_STATES = ("pending", "success", "closed")


@attrs.frozen
class OrderMessage:
    msg_id: str
    order_id: str
    version: int
    #: ``(identity channel, external id)`` of the buyer, when the message names one
    identity: tuple[str, str] | None = None
    #: the order's status after this message (``paid``/``closed``/another provider word)
    status: str | None = None
    #: paid amount in fen and when it was paid (Unix seconds), from a paid message
    paid_fen: int | None = None
    paid_at: int | None = None
    refund_id: str | None = None
    refund_fen: int | None = None
    refund_state: str | None = None
    display_name: str | None = None


#: the widths of the fact table's columns (``order_store``)
MAX_ID = 128
MAX_IDENTITY = 200


def check(msg: OrderMessage) -> list[str]:
    """What of ``msg`` does not fit the fact table, as ``"name: fix"`` sentences."""
    problems = [
        f"{name}: at most {MAX_ID} characters"
        for name, value in (("msg_id", msg.msg_id), ("order_id", msg.order_id), ("refund_id", msg.refund_id))
        if value is not None and len(value) > MAX_ID
    ]
    if msg.identity is not None and (len(msg.identity[0]) > 64 or len(msg.identity[1]) > MAX_IDENTITY):
        problems.append(f"customer: an identity of at most {MAX_IDENTITY} characters")
    if not -(2**62) < msg.version < 2**62:
        problems.append("version: an integer of at most 18 digits")
    return problems

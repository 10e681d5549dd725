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

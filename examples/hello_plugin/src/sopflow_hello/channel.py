"""The ``console`` channel: "sends" by recording the message in ``OUTBOX``.

A stand-in for a real provider that still behaves like one: it declares its
capabilities, reaches a customer through their ``console`` identity, and is
idempotent (a retry with the same key does not send twice).
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from sopflow_sdk import (
    Capabilities,
    Channel,
    CustomerCap,
    OutboundMessage,
    SendReceipt,
    SkippableError,
)

log = logging.getLogger("sopflow_hello")

#: What the channel delivered, oldest first (one dict per message).
OUTBOX: list[dict[str, Any]] = []
_lock = threading.Lock()


class ConsoleChannel(Channel):
    name = "console"
    # The engine plans around this declaration: which touchpoints a step may
    # use, how many attachments, whether a send may be retried after a crash
    # (idempotent_send), and how fast one account may send.
    capabilities = Capabilities(
        touchpoints=frozenset({"private_chat", "staff_notice"}),
        max_attachments=1,
        idempotent_send=True,
        rate_per_minute=60,
        customer_cap=CustomerCap(count=3, period="day"),
    )

    def __init__(self, config, secrets):
        self.sender = config.get("sender", "sopflow")
        self.token = secrets.get("token")  # a sopflow_sdk.Secret: prints as ***

    def send(self, message: OutboundMessage) -> SendReceipt:
        self.check(message)  # UnsupportedCapabilityError for an undeclared touchpoint
        to = message.recipient.get("external_id")
        if to is None:
            raise SkippableError("the customer has no console identity")
        with _lock:
            if not any(m["key"] == message.idempotency_key for m in OUTBOX):
                OUTBOX.append(
                    {
                        "key": message.idempotency_key,
                        "sender": self.sender,
                        "to": to,
                        "touchpoint": message.touchpoint,
                        "text": message.text,
                    }
                )
                log.info("console send to %s: %s", to, message.text)
        return SendReceipt("sent", provider_ref=message.idempotency_key)

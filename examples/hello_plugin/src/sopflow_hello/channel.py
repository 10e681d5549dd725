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
    Setting,
    SettingsSchema,
    SkippableError,
)

log = logging.getLogger("sopflow_hello")

#: What the channel delivered, oldest first (one dict per message).
OUTBOX: list[dict[str, Any]] = []
_lock = threading.Lock()

# An account's settings: core checks POST /api/v1/channel-accounts against them
# (one 422 listing every problem), fills in defaults, and encrypts the secrets.
CONSOLE_SETTINGS = SettingsSchema(
    Setting("sender", default="sopflow", max_length=30, description="who the messages are from"),
    Setting("token", secret=True, required=True, description="the provider's API token"),
)
# What a send step on this channel may carry besides its text: checked when the
# SOP is saved, handed to send() as message.params.
CONSOLE_STEP_PARAMS = SettingsSchema(
    Setting("signature", max_length=40, description="a line added under the text"),
)


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
        self.sender = config.get("sender", "sopflow")  # filled in by core from CONSOLE_SETTINGS
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
                        "signature": message.params.get("signature"),
                    }
                )
                log.info("console send to %s: %s", to, message.text)
        return SendReceipt("sent", provider_ref=message.idempotency_key)

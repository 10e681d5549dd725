"""The built-in ``log`` channel: records what it would send.  For tests and for
deployments that have no real channel yet."""

from __future__ import annotations

import threading
from typing import Any, ClassVar

from sopflow_sdk import (
    TOUCHPOINTS,
    Capabilities,
    Channel,
    ChannelSpec,
    OutboundMessage,
    SendReceipt,
    hookimpl,
)

from sopflow.logging import get_logger

log = get_logger("sopflow.channels.log")


class LogChannel(Channel):
    name = "log"
    capabilities: ClassVar[Capabilities] = Capabilities(
        touchpoints=frozenset(TOUCHPOINTS),
        max_attachments=9,
        idempotent_send=True,
    )

    def __init__(self, config: dict[str, Any] | None = None, secrets: Any = None) -> None:
        self.config = config or {}
        self.sent: list[OutboundMessage] = []
        self._keys: set[str] = set()  # a scan of ``sent`` per send made a burst quadratic
        self._lock = threading.Lock()

    def send(self, message: OutboundMessage) -> SendReceipt:
        self.check(message)
        with self._lock:
            if message.idempotency_key in self._keys:
                return SendReceipt("sent", provider_ref=message.idempotency_key)
            self._keys.add(message.idempotency_key)
            self.sent.append(message)
        log.info(
            "log_channel_send", touchpoint=message.touchpoint, text=message.text, key=message.idempotency_key
        )
        return SendReceipt("sent", provider_ref=message.idempotency_key)


@hookimpl(trylast=True)
def register_channels(register):  # type: ignore[no-untyped-def]
    register(ChannelSpec("log", factory=LogChannel, description="records what it would send"))

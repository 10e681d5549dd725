"""The built-in channels: ``log`` records what it would send (for tests and for
deployments that have no real channel yet); ``manual`` is a send a staff member
makes by hand, whose touch waits (``pending``) until they tap "sent" or "skip"."""

from __future__ import annotations

import threading
from collections.abc import Mapping
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


class ManualChannel(Channel):
    """A send a staff member makes by hand (from their phone, in person): the send
    calls nobody and returns ``pending``; the touch waits until the member taps
    "sent" or "skip" (the WeCom sidebar, ``Host.confirm_touches``), and the
    confirmation poll answers from that tap (``answer_from_tap``), never from a provider."""

    name = "manual"
    capabilities: ClassVar[Capabilities] = Capabilities(
        touchpoints=frozenset({"private_chat"}),
        needs_staff_confirmation=True,
        idempotent_send=True,  # no external call: a retry cannot reach anyone twice
    )

    def __init__(self, config: dict[str, Any] | None = None, secrets: Any = None) -> None:
        self.config = config or {}
        self.sent: list[OutboundMessage] = []  # what staff were asked to send, once per touch
        self._keys: set[str] = set()
        self._lock = threading.Lock()

    def send(self, message: OutboundMessage) -> SendReceipt:
        self.check(message)
        with self._lock:
            if message.idempotency_key not in self._keys:
                self._keys.add(message.idempotency_key)
                self.sent.append(message)
        return SendReceipt("pending", provider_ref=message.idempotency_key)

    def poll(self, provider_ref: str) -> Mapping[str, str]:
        """Without a tap nobody has said it went out: still pending."""
        return self.answer_from_tap(provider_ref, None)

    def answer_from_tap(self, provider_ref: str, tap: str | None) -> Mapping[str, str]:
        """The member's recorded tap as the poll's answer: "sent" is sent; "skip"
        (and no tap yet) leaves it pending, and core then cancels it (``cancel``)."""
        return {provider_ref: "sent" if tap == "sent" else "pending"}

    def cancel(self, provider_ref: str) -> bool:
        """Skipped by the member: there is no task anywhere to stop."""
        return True


@hookimpl(trylast=True)
def register_channels(register):  # type: ignore[no-untyped-def]
    register(ChannelSpec("log", factory=LogChannel, description="records what it would send"))
    register(ChannelSpec("manual", factory=ManualChannel, description="a send a staff member makes by hand"))

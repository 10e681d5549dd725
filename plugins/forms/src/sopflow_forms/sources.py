"""Source accounts: a shop or a form provider is a channel account that only
receives.  Its settings (client ids, signing secrets) are declared like any
channel's, so ``POST /api/v1/channel-accounts`` validates them and keeps the
secrets encrypted and write-only; the webhook URL names the account."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from sopflow_sdk import Capabilities, Channel, OutboundMessage, SendReceipt, UnsupportedCapabilityError


class InboundOnly(Channel):
    """A channel account that receives webhooks and sends nothing (no touchpoints,
    so an SOP step on it is refused when saved)."""

    name: ClassVar[str] = "inbound"
    capabilities: ClassVar[Capabilities] = Capabilities(touchpoints=frozenset(), max_attachments=0)

    def __init__(self, config: Mapping[str, Any], secrets: Mapping[str, Any], **_: Any) -> None:
        self.config = dict(config)

    def send(self, message: OutboundMessage) -> SendReceipt:
        raise UnsupportedCapabilityError(self.name, message.touchpoint)


def inbound_channel(name: str) -> type[InboundOnly]:
    """An ``InboundOnly`` subclass named ``name`` (the channel account's ``channel``)."""
    return type(f"Inbound_{name}", (InboundOnly,), {"name": name})

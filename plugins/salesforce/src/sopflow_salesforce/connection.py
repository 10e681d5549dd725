"""The ``salesforce`` channel: a CRM connection, registered as a channel account
so core validates, encrypts and hands out its settings (see ``settings.py``).

It sends nothing: Salesforce is where customer data lives, not a touchpoint, so
it declares no touchpoints and the engine never plans a send on it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sopflow_sdk import Capabilities, Channel, FatalError, OutboundMessage, SendReceipt

CHANNEL = "salesforce"


class SalesforceConnection(Channel):
    name = CHANNEL
    capabilities = Capabilities(touchpoints=frozenset())

    def __init__(self, config: Mapping[str, Any], secrets: Mapping[str, Any]) -> None:
        self.config = dict(config)
        self._secrets = secrets  # Secret values; never printed (see __repr__ in Channel)

    def send(self, message: OutboundMessage) -> SendReceipt:
        raise FatalError("a Salesforce connection sends no messages; use a messaging channel for SOP steps")

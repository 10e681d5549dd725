"""The sopflow entry point for Salesforce: hook implementations only.

A Salesforce connection is a ``salesforce`` channel account (``settings.py``
says why).  Hooks stay cheap and declarative; the sync, the outbox and the
import are jobs and routes in their own modules.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sopflow_sdk import ChannelSpec, hookimpl

from sopflow_salesforce.connection import CHANNEL, SalesforceConnection
from sopflow_salesforce.settings import SALESFORCE_SETTINGS


@hookimpl
def register_channels(register: Callable[[Any], None]) -> None:
    register(
        ChannelSpec(
            name=CHANNEL,
            factory=SalesforceConnection,
            settings=SALESFORCE_SETTINGS,
            description="a Salesforce org: two-way field sync (JWT bearer or client credentials)",
        )
    )

"""A channel's own rate limit (``Capabilities.rate_per_minute``) spreads sends
over time without using up retry attempts: a long queue behind a slow channel
ends with every touch sent, none failed."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
from sopflow_sdk import Capabilities, Channel, ChannelSpec, OutboundMessage, SendReceipt, hookimpl

from tests.sop_support import add_customer, create_sop, run_days, touches

CALLS: list[tuple[str, Any]] = []


class SlowChannel(Channel):
    name = "slow"
    capabilities = Capabilities(
        touchpoints=frozenset({"private_chat"}), idempotent_send=True, rate_per_minute=2
    )

    def __init__(self, config: Any, secrets: Any) -> None:
        pass

    def send(self, message: OutboundMessage) -> SendReceipt:
        CALLS.append((message.idempotency_key, None))
        return SendReceipt("sent", provider_ref=message.idempotency_key)


@hookimpl
def register_channels(register: Any) -> None:
    register(ChannelSpec(name="slow", factory=SlowChannel, description="2 sends a minute"))


@pytest.fixture
def sopflow_plugins():
    return [("slow-test", SimpleNamespace(register_channels=register_channels))]


def test_rate_limited_queue_drains_without_failures(api, sopflow_app, manual_clock):
    CALLS.clear()
    r = api.post(
        "/api/v1/channel-accounts", json={"channel": "slow", "name": "s", "config": {}, "secrets": {}}
    )
    assert r.status_code == 201, r.text
    create_sop(
        api,
        "burst",
        {
            "kind": "new_customer",
            "target": {},
            "steps": [
                {
                    "delay": "1h",
                    "actions": [
                        {"type": "send", "channel": "slow", "touchpoint": "private_chat", "text": "hi"}
                    ],
                }
            ],
        },
    )
    customers = [add_customer(api, f"wm-burst-{i}") for i in range(30)]
    run_days(sopflow_app, manual_clock, 1)
    rows = touches(sopflow_app)
    assert len(rows) == len(customers)
    assert [t.status for t in rows] == ["sent"] * len(customers)  # 30 touches at 2/min: 15+ min, no failures
    assert len(CALLS) == len(customers) == len({key for key, _ in CALLS})  # each sent once
    throttled = [t for t in rows if t.defer_reason == "rate_limit"]
    assert throttled and all(t.attempts == 1 for t in rows)  # waiting for the limiter is not an attempt
    spread = max(t.sent_at for t in rows) - min(t.sent_at for t in rows)
    assert spread.total_seconds() >= (len(customers) / 2 - 2) * 60  # the limit held: ~2 a minute

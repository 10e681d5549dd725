"""A channel's own rate limit (``Capabilities.rate_per_minute``) spreads sends
over time without using up retry attempts: a long queue behind a slow channel
ends with every touch sent, none failed."""

from __future__ import annotations

import itertools
from datetime import timedelta
from types import SimpleNamespace
from typing import Any

import pytest
from sopflow_sdk import (
    Capabilities,
    Channel,
    ChannelContext,
    ChannelSpec,
    DeferredError,
    OutboundMessage,
    SendReceipt,
    hookimpl,
)

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
    return [
        ("slow-test", SimpleNamespace(register_channels=register_channels)),
        ("paced-test", SimpleNamespace(register_channels=register_paced)),
    ]


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


# -- a channel's own pacing: "not before T", with the engine's clock handed to it ------------------

PACED: list[tuple[str, Any]] = []


class PacedChannel(Channel):
    """One send every ten minutes, by the channel's own reckoning (as a channel whose
    limiter lives in its plugin's tables decides), on the engine's clock."""

    name = "paced"
    capabilities = Capabilities(touchpoints=frozenset({"private_chat"}), idempotent_send=False)

    def __init__(self, config: Any, secrets: Any, *, context: ChannelContext) -> None:
        self.context = context
        self.next_ok = context.now()

    def send(self, message: OutboundMessage) -> SendReceipt:
        now = self.context.now()
        if now < self.next_ok:
            wait = (self.next_ok - now).total_seconds()
            raise DeferredError("paced", retry_after=wait, reason="paced: ten minutes apart")
        self.next_ok = now + timedelta(minutes=10)
        PACED.append((message.idempotency_key, now))
        return SendReceipt("sent")


@hookimpl
def register_paced(register: Any) -> None:
    register(ChannelSpec(name="paced", factory=PacedChannel, context=True, description="10 minutes apart"))


def test_a_channels_own_deferral_is_not_an_attempt_and_keeps_its_reason(api, sopflow_app, manual_clock):
    PACED.clear()
    r = api.post(
        "/api/v1/channel-accounts", json={"channel": "paced", "name": "p", "config": {}, "secrets": {}}
    )
    assert r.status_code == 201, r.text
    send = {"type": "send", "channel": "paced", "touchpoint": "private_chat", "text": "hi"}
    create_sop(
        api, "burst", {"kind": "new_customer", "target": {}, "steps": [{"delay": "1h", "actions": [send]}]}
    )
    customers = [add_customer(api, f"wm-paced-{i}") for i in range(5)]
    run_days(sopflow_app, manual_clock, 1)
    rows = touches(sopflow_app)
    assert [t.status for t in rows] == ["sent"] * len(customers)
    assert all(t.attempts == 1 for t in rows)  # held back by the channel: never an attempt
    assert {t.defer_reason for t in rows if t.deferrals} == {"paced: ten minutes apart"}
    times = sorted(at for _, at in PACED)
    assert all((b - a) >= timedelta(minutes=10) for a, b in itertools.pairwise(times))

"""The long-lived listener over real gRPC: events become sopflow events as they
come, and when the puppet service goes away and comes back on its port the
listener reconnects, with nothing handled twice."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from sopflow_personal_wechat.accounts import account_channel
from sopflow_personal_wechat.fake import FakePuppetService, start_fake
from sopflow_personal_wechat.fake.scenario import CONTACTS, TOKEN
from sopflow_personal_wechat.listener import Listener
from sopflow_personal_wechat.port import Contact


def _until(predicate: Callable[[], bool], what: str, timeout: float = 15.0) -> None:
    """Real sockets and a real thread: wait (bounded) for what the listener does."""
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


@pytest.fixture
def fake(manual_clock: Any) -> Iterator[FakePuppetService]:
    with start_fake(lambda: manual_clock.now().timestamp()) as server:
        yield server


def test_the_listener_handles_events_as_they_come_and_reconnects_after_a_drop(
    api: Any, sopflow_app: Any, fake: FakePuppetService, manual_clock: Any
) -> None:
    from sopflow.host import PluginHost

    made = api.post(
        "/api/v1/channel-accounts",
        json={
            "channel": "personal_wechat",
            "name": "staff01",
            "config": {"adapter": "wechaty", "endpoint": fake.endpoint, "tls": False, "warmup_days": 0},
            "secrets": {"token": TOKEN},
        },
    )
    assert made.status_code == 201, made.text
    host = PluginHost(sopflow_app, "personal_wechat")
    account = host.channel_account(made.json()["id"])
    listener = Listener(host, account, account_channel(account, host), idle_timeout=0.2, backoff=0.05)
    listener.start()
    state = fake.state
    fake_account = state.account(TOKEN)
    customers = lambda: api.get("/api/v1/customers?channel=personal_wechat").json()["items"]  # noqa: E731
    try:
        state.request_friend(fake_account, Contact("wxid_first", name="第一位"))
        _until(lambda: len(customers()) == 1, "the first friend to become a customer")
        # the gateway goes away (its port closes) and comes back on the same port
        fake.stop()
        _until(lambda: listener.drops >= 1, "the listener to see the drop")
        again = FakePuppetService(fake.clock, state=state)
        again.port = fake.port
        with again:
            state.request_friend(fake_account, Contact("wxid_second", name="第二位"))
            state.receive_message(fake_account, CONTACTS[0].wxid, "还在吗")
            _until(lambda: len(customers()) == 3, "the second friend and the message's sender")
            _until(
                lambda: len(api.get("/api/v1/events?type=message.received").json()["items"]) == 1,
                "the message after the reconnect",
            )
            assert listener.alive
            listener.stop()
    finally:
        listener.stop()
    friends = [
        i["external_id"] for c in customers() for i in c["identities"] if i["external_id"] != CONTACTS[0].wxid
    ]
    assert sorted(friends) == ["wxid_first", "wxid_second"]  # none twice
    assert fake_account.accepted == ["wxid_first", "wxid_second"]
    assert not listener.alive

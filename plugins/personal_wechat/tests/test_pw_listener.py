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


def _wechaty_account(api: Any, endpoint: str, **config: Any) -> int:
    """A personal WeChat account on the Wechaty gateway at ``endpoint``; its id."""
    made = api.post(
        "/api/v1/channel-accounts",
        json={
            "channel": "personal_wechat",
            "name": "staff01",
            "config": {"adapter": "wechaty", "endpoint": endpoint, "tls": False, **config},
            "secrets": {"token": TOKEN},
        },
    )
    assert made.status_code == 201, made.text
    return int(made.json()["id"])


@pytest.fixture
def fake(manual_clock: Any) -> Iterator[FakePuppetService]:
    with start_fake(lambda: manual_clock.now().timestamp()) as server:
        yield server


def test_the_listener_handles_events_as_they_come_and_reconnects_after_a_drop(
    api: Any, sopflow_app: Any, fake: FakePuppetService, manual_clock: Any
) -> None:
    from sopflow.host import PluginHost

    account_id = _wechaty_account(api, fake.endpoint, warmup_days=0)
    host = PluginHost(sopflow_app, "personal_wechat")
    account = host.channel_account(account_id)
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


def test_the_worker_runs_a_listener_per_logged_in_account_until_logout_or_shutdown(
    api: Any, sopflow_app: Any, fake: FakePuppetService, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The worker service, as ``sopflow worker`` starts it: a message arrives through
    the listener with no intake run; a logout ends the listener and none is started
    while logged out; the re-login (read by the periodic intake) starts it again; the
    worker's shutdown stops its thread."""
    from sopflow.host import PluginHost
    from sopflow.worker.services import start_services
    from sopflow_personal_wechat import listeners
    from sopflow_personal_wechat.accounts import run_intake

    monkeypatch.setattr(listeners, "RECONCILE_SECONDS", 0.05)
    monkeypatch.setattr(listeners, "IDLE_SECONDS", 0.2)
    account_id = _wechaty_account(api, fake.endpoint)
    state, fake_account = fake.state, fake.state.account(TOKEN)
    messages = lambda: [  # noqa: E731
        e["payload"]["text"] for e in api.get("/api/v1/events?type=message.received").json()["items"]
    ]
    services = start_services(sopflow_app)
    try:
        _until(lambda: listeners.listening(account_id), "the worker to start the account's listener")
        first = listeners.running[account_id]
        state.receive_message(fake_account, CONTACTS[0].wxid, "在吗")
        _until(lambda: messages() == ["在吗"], "the message through the listener")

        state.logout(fake_account)
        _until(lambda: not first.alive, "the logout to end the listener")
        for _ in range(5):  # several reconciliations: none starts a listener while logged out
            services.stopping.wait(listeners.RECONCILE_SECONDS)
            assert not listeners.listening(account_id)

        state.login(fake_account)  # the staff member scanned the QR code
        run_intake(PluginHost(sopflow_app, "personal_wechat"))  # the periodic intake reads the login
        _until(lambda: listeners.listening(account_id), "the re-login to start a listener again")
        second = listeners.running[account_id]
        assert second is not first
        state.receive_message(fake_account, CONTACTS[0].wxid, "还在")
        _until(lambda: sorted(messages()) == sorted(["在吗", "还在"]), "the message after the re-login")
    finally:
        services.stop(timeout=10)
    assert not second.alive and listeners.running == {} and services.alive == []
    assert sorted(messages()) == sorted(["在吗", "还在"])  # none twice


def test_one_worker_process_holds_an_accounts_listener_lease_until_it_lets_go_or_it_runs_out(
    api: Any, sopflow_app: Any, manual_clock: Any
) -> None:
    """Two processes' owners over one account: the second is refused while the first
    renews; it takes over when the first releases, or once an unrenewed lease ran out."""
    from datetime import timedelta

    from sopflow.host import PluginHost
    from sopflow_personal_wechat.listeners import LEASE_SECONDS, lease, release

    host = PluginHost(sopflow_app, "personal_wechat")
    account_id = _wechaty_account(api, "127.0.0.1:1")
    account = host.channel_account(account_id)
    tenant_id, account_id = account.tenant_id, account.id
    assert lease(host, tenant_id, account_id, owner="worker-a")
    assert not lease(host, tenant_id, account_id, owner="worker-b")
    manual_clock.advance(timedelta(seconds=LEASE_SECONDS / 2))
    assert lease(host, tenant_id, account_id, owner="worker-a")  # renewed
    assert not lease(host, tenant_id, account_id, owner="worker-b")
    release(host, tenant_id, account_id, owner="worker-b")  # not its lease: nothing changes
    assert not lease(host, tenant_id, account_id, owner="worker-b")
    release(host, tenant_id, account_id, owner="worker-a")
    assert lease(host, tenant_id, account_id, owner="worker-b")  # let go: taken at once
    manual_clock.advance(timedelta(seconds=LEASE_SECONDS + 1))  # worker-b died without renewing
    assert lease(host, tenant_id, account_id, owner="worker-a")


def test_a_channel_replaced_by_new_settings_closes_its_gateway_after_the_grace(
    api: Any, sopflow_app: Any, fake: FakePuppetService, monkeypatch: Any
) -> None:
    """A settings change makes a new live channel; the old one's connection is
    closed once what may still use it is done, not left open for the process's life."""
    from sopflow.host import PluginHost
    from sopflow_personal_wechat import accounts

    monkeypatch.setattr(accounts, "STALE_GRACE_SECONDS", 0.01)
    config = {"adapter": "wechaty", "endpoint": fake.endpoint, "tls": False, "warmup_days": 0}
    made = api.post(
        "/api/v1/channel-accounts",
        json={"channel": "personal_wechat", "name": "s2", "config": config, "secrets": {"token": TOKEN}},
    )
    assert made.status_code == 201, made.text
    host = PluginHost(sopflow_app, "personal_wechat")
    old = account_channel(host.channel_account(made.json()["id"]), host)
    closed: list[bool] = []
    monkeypatch.setattr(old.gateway, "close", lambda: closed.append(True))
    assert account_channel(host.channel_account(made.json()["id"]), host) is old  # same settings: shared
    changed = api.patch(
        f"/api/v1/channel-accounts/{made.json()['id']}", json={"config": {**config, "warmup_days": 1}}
    )
    assert changed.status_code == 200, changed.text
    new = account_channel(host.channel_account(made.json()["id"]), host)
    assert new is not old
    _until(lambda: closed == [True], "the replaced gateway to be closed")
    new.gateway.close()


def test_a_look_that_read_the_login_before_the_listener_saw_the_logout_starts_no_listener(
    api: Any, sopflow_app: Any, fake: FakePuppetService, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The race of a look with a logout: it reads the account logged in, the listener
    then reads the logout and ends, and the look finds it dead.  It must not start
    another on what it read before; the next look reads the logout and starts none."""
    from sopflow.host import PluginHost
    from sopflow_personal_wechat import listeners
    from sopflow_personal_wechat.pacing import Pacer

    monkeypatch.setattr(listeners, "IDLE_SECONDS", 0.2)
    host = PluginHost(sopflow_app, "personal_wechat")
    account_id = _wechaty_account(api, fake.endpoint)
    try:
        listeners.reconcile(host)
        first = listeners.running[account_id]
        _until(lambda: first.events > 0, "the listener's first event")
        real_row = Pacer.row

        def read_then_logout(self: Any, key: str) -> Any:
            row = real_row(self, key)  # the look reads "logged in" ...
            fake.state.logout(fake.state.account(TOKEN))  # ... then the logout comes
            _until(lambda: not first.alive, "the logout to end the listener")
            return row

        with monkeypatch.context() as m:
            m.setattr(Pacer, "row", read_then_logout)
            listeners.reconcile(host)
        assert not listeners.listening(account_id) and account_id not in listeners.running
        listeners.reconcile(host)  # the next look reads the logout
        assert account_id not in listeners.running
    finally:
        listeners.stop_all()

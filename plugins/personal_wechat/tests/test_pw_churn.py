"""A contact who deleted the account, over real sockets to both fakes: a Wechaty
puppet refuses the send with WeChat's words, WeChatFerry takes it and WeChat's
notice follows in the chat.  Either way the send ends as a non-retried failure
(at once, with no gateway call, once the deletion is known), and the intake emits
one ``customer.churned`` for the customer and account; a replay adds nothing."""

from __future__ import annotations

from datetime import timedelta
from types import SimpleNamespace
from typing import Any

import pytest
from pw_support import Kit, intake_via_api
from sopflow_personal_wechat import intake, unfriended
from sopflow_personal_wechat.channel import PersonalWeChatChannel
from sopflow_personal_wechat.fake import start_fake
from sopflow_personal_wechat.fake.scenario import CONTACTS, SELF_ID, TOKEN
from sopflow_personal_wechat.port import Contact, NotAFriend, Payload
from sopflow_sdk import FatalError, OutboundMessage
from sopflow_sdk.testing import run_due

LI = CONTACTS[0].wxid
NEWCOMER = Contact("wxid_new_zhao", name="赵同学")


def _sends(kit: Kit) -> int:
    return sum(1 for c in kit.fake.calls if c in ("MessageSendText", "FUNC_SEND_TXT"))


def test_the_gateway_answers_a_send_to_a_contact_who_deleted_the_account(kit: Kit) -> None:
    kit.state.delete_account(kit.account, LI)
    if kit.adapter == "wechaty":  # the puppet's send error carries WeChat's words
        with pytest.raises(NotAFriend) as info:
            kit.gateway.send(LI, Payload("text", text="在吗"))
        assert info.value.contact_id == LI and isinstance(info.value, FatalError)
        assert LI in info.value.user_message and "not retried" in info.value.user_message
    else:  # PC WeChat takes the send; WeChat's notice then shows in the chat
        kit.gateway.send(LI, Payload("text", text="在吗"))
        [event] = [e for e in kit.gateway.events(idle_timeout=0.5) if e.kind == "unfriended"]
        assert event.subject == LI and event.id and "开启了朋友验证" in event.text
    assert kit.account.sent == []  # it reached nobody


@pytest.fixture
def channel(kit: Kit, pacer: Any, clock: Any) -> PersonalWeChatChannel:
    config = {"adapter": kit.adapter, "endpoint": kit.fake.endpoint, "tls": False}
    return PersonalWeChatChannel(config, {"token": TOKEN}, gateway=kit.gateway, pacer=pacer, clock=clock)


def _message(wxid: str, text: str) -> OutboundMessage:
    return OutboundMessage(
        touchpoint="private_chat", text=text, idempotency_key=f"touch:{text}", recipient={"external_id": wxid}
    )


def test_the_channel_fails_the_send_and_notes_it_then_fails_at_once(
    kit: Kit, channel: PersonalWeChatChannel, clock: Any
) -> None:
    host_events: list[Any] = []
    no_state = SimpleNamespace(items=lambda prefix="": {})  # no friend request waits
    host = SimpleNamespace(
        ingest=lambda tenant, events: host_events.extend(events) or [{"status": "created"} for _ in events],
        state=lambda tenant: no_state,
    )
    account = SimpleNamespace(tenant_id=1, config={})
    kit.state.delete_account(kit.account, LI)
    if kit.adapter == "wechaty":
        with pytest.raises(NotAFriend):
            channel.send(_message(LI, "第一条"))
        assert channel.pacer.row(channel.key)["counts"].get("message", 0) == 0  # the slot is given back
    else:
        channel.send(_message(LI, "第一条"))  # WeChat took it; its notice comes on the stream
    assert intake.run(host, account, channel, idle_timeout=0.5) == 1
    [churned] = host_events
    assert (churned.type, churned.identity.external_id, churned.identity.staff_external_id) == (
        "customer.churned",
        LI,
        SELF_ID,
    )
    assert churned.payload["reason"] == "deleted_account"
    assert unfriended.known(channel.pacer.engine, channel.key, LI)
    clock.advance(3600)
    before = _sends(kit)
    with pytest.raises(NotAFriend, match="not retried"):
        channel.send(_message(LI, "第二条"))
    assert _sends(kit) == before  # known: no gateway call at all
    assert intake.run(host, account, channel, idle_timeout=0.3) == 0  # reported once
    assert len(host_events) == 1
    channel.send(_message(CONTACTS[1].wxid, "别人照常"))  # other contacts are not affected
    assert [d.content for d in kit.account.sent] == ["别人照常"]


class _State:
    """A plugin state in memory (``host.state``): where friend requests wait."""

    def __init__(self) -> None:
        self.values: dict[str, Any] = {}

    def set(self, key: str, value: Any) -> None:
        self.values[key] = value

    def delete(self, key: str) -> bool:
        return self.values.pop(key, None) is not None

    def items(self, prefix: str = "") -> dict[str, Any]:
        return {k: v for k, v in sorted(self.values.items()) if k.startswith(prefix)}


def test_a_contact_added_again_then_deleting_again_is_a_second_churn(
    kit: Kit, channel: PersonalWeChatChannel, clock: Any
) -> None:
    events: list[Any] = []
    state = _State()
    host = SimpleNamespace(
        ingest=lambda tenant, batch: events.extend(batch) or [{"status": "created"} for _ in batch],
        state=lambda tenant: state,
    )
    account = SimpleNamespace(tenant_id=1, config={})

    def delete_and_write() -> None:
        kit.state.delete_account(kit.account, LI)
        try:
            channel.send(_message(LI, f"在吗 {clock()}"))
        except NotAFriend:
            assert kit.adapter == "wechaty"
        intake.run(host, account, channel, idle_timeout=0.5)

    delete_and_write()
    kit.state.request_friend(kit.account, CONTACTS[0], hello="又加回来了")
    clock.advance(3600)
    intake.run(host, account, channel, idle_timeout=0.5)  # accepted: a friend again
    assert not unfriended.known(channel.pacer.engine, channel.key, LI)
    kit.account.streamed = 0  # the gateway replays everything, the old notice too: no new churn
    intake.run(host, account, channel, idle_timeout=0.5)
    assert [e.type for e in events] == ["customer.churned", "customer.added"]
    assert not unfriended.known(channel.pacer.engine, channel.key, LI)
    clock.advance(3600)
    delete_and_write()
    assert [e.type for e in events] == ["customer.churned", "customer.added", "customer.churned"]
    assert events[0].idempotency_key != events[2].idempotency_key


# -- through sopflow ---------------------------------------------------------------------------------


def _send(text: str) -> dict[str, Any]:
    return {"type": "send", "channel": "personal_wechat", "touchpoint": "private_chat", "text": text}


def test_a_customer_who_deleted_the_account_is_churned_once(api: Any, app_fake: Any, account_id: int) -> None:
    steps = [
        {"delay": "0m", "actions": [_send("欢迎！")]},
        {"day": 2, "at": "10:00", "actions": [_send("第二天的小贴士")]},
    ]
    definition = {"kind": "new_customer", "target": {}, "steps": steps}
    made = api.post("/api/v1/sops", json={"name": "greet", "definition": definition})
    assert made.status_code == 201, made.text
    assert api.post(f"/api/v1/sops/{made.json()['id']}/start").status_code == 200
    state, account = app_fake.state, app_fake.state.account(TOKEN)
    state.request_friend(account, NEWCOMER, hello="扫码加的")
    assert intake_via_api(api, account_id) == 1
    run_due(api, by=timedelta(minutes=1))
    assert [d.content for d in account.sent] == ["欢迎！"]

    state.delete_account(account, NEWCOMER.wxid)
    run_due(api, by=timedelta(days=3))
    touches = api.get("/api/v1/touches").json()["items"]
    push = next(t for t in touches if t["step_index"] == 1)
    if app_fake.adapter == "wechaty":  # the refusal is the answer: failed, not retried, reason named
        assert push["status"] == "failed", push
        assert "not a friend" in push["outcome"]["reason"]
    else:  # WeChat took the send; its notice follows in the chat
        assert push["status"] == "sent", push
    assert [d.content for d in account.sent] == ["欢迎！"]  # the push reached nobody

    assert intake_via_api(api, account_id) == 1  # the customer.churned
    [churned] = api.get("/api/v1/events?type=customer.churned").json()["items"]
    [customer] = api.get("/api/v1/customers?channel=personal_wechat").json()["items"]
    assert churned["customer_id"] == customer["id"]
    assert customer["churned"] is True
    assert [(r["staff_external_id"], r["active"]) for r in customer["relations"]] == [(SELF_ID, False)]

    state.account(TOKEN).streamed = 0  # the gateway replays its whole stream
    assert intake_via_api(api, account_id) == 0
    assert len(api.get("/api/v1/events?type=customer.churned").json()["items"]) == 1


def test_the_listener_reports_a_failed_sends_deletion_when_it_reopens(
    api: Any, sopflow_app: Any, manual_clock: Any
) -> None:
    """A deletion found by a send in a worker reaches sopflow through the account's
    listener (it reports at each reopening of its stream), once."""
    import time

    from sopflow.host import PluginHost
    from sopflow_personal_wechat.accounts import account_channel
    from sopflow_personal_wechat.listener import Listener

    def until(predicate: Any, what: str) -> None:  # a real thread on real sockets: bounded wait
        deadline = time.monotonic() + 15
        while not predicate():
            assert time.monotonic() < deadline, f"timed out waiting for {what}"
            time.sleep(0.02)

    churned = lambda: api.get("/api/v1/events?type=customer.churned").json()["items"]  # noqa: E731
    with start_fake(lambda: manual_clock.now().timestamp()) as fake:
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
        channel = account_channel(account, host)
        listener = Listener(host, account, channel, idle_timeout=0.2, backoff=0.05).start()
        try:
            until(lambda: channel.gateway.self_id == SELF_ID, "the stream to name the account")
            fake.state.delete_account(fake.state.account(TOKEN), LI)
            with pytest.raises(NotAFriend):
                channel.send(_message(LI, "在吗"))
            until(lambda: len(churned()) == 1, "the listener to report the deletion")
            seen = listener.events
            until(lambda: listener.events >= seen + 4, "two more reopenings")  # heartbeat + login each
            assert len(churned()) == 1
        finally:
            listener.stop()
    [event] = churned()
    assert event["payload"]["reason"] == "deleted_account"

"""Through sopflow's public API: account settings checked at creation, the intake
turning the fake gateway's events into customers, a new-customer SOP's greeting
and its day-N push paced and sent, and the account's health page."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sopflow_personal_wechat.fake.scenario import CONTACTS, SELF_ID, TOKEN
from sopflow_personal_wechat.port import Contact, Room
from sopflow_sdk.testing import run_due

NEWCOMER = Contact("wxid_new_zhao", name="赵同学", gender="female", city="北京")


def _sop(api: Any, steps: list[dict[str, Any]], kind: str = "new_customer") -> int:
    made = api.post(
        "/api/v1/sops", json={"name": "greet", "definition": {"kind": kind, "target": {}, "steps": steps}}
    )
    assert made.status_code == 201, made.text
    assert api.post(f"/api/v1/sops/{made.json()['id']}/start").status_code == 200
    return int(made.json()["id"])


def _send(text: str) -> dict[str, Any]:
    return {"type": "send", "channel": "personal_wechat", "touchpoint": "private_chat", "text": text}


def test_a_malformed_endpoint_or_token_is_a_422_naming_the_field(api: Any) -> None:
    before = api.get("/api/v1/channel-accounts").json()
    bad = api.post(
        "/api/v1/channel-accounts",
        json={
            "channel": "personal_wechat",
            "name": "staff01",
            "config": {"adapter": "wechaty", "endpoint": "gateway.example.com", "min_gap_seconds": 0},
            "secrets": {"token": "has spaces in it"},
        },
    )
    assert bad.status_code == 422, bad.text
    assert {e["field"] for e in bad.json()["errors"]} == {
        "config.endpoint",
        "config.min_gap_seconds",
        "secrets.token",
    }
    assert "has spaces in it" not in bad.text
    no_token = api.post(
        "/api/v1/channel-accounts",
        json={
            "channel": "personal_wechat",
            "name": "staff02",
            "config": {"adapter": "wechaty", "endpoint": "gw:9001"},
        },
    )
    assert no_token.status_code == 422 and [e["field"] for e in no_token.json()["errors"]] == [
        "secrets.token"
    ]
    assert api.get("/api/v1/channel-accounts").json() == before


def test_friend_request_accepted_greeting_sent_once_then_day_n_push(
    api: Any, app_fake: Any, account_id: int
) -> None:
    _sop(
        api,
        [
            {"delay": "0m", "actions": [_send("欢迎！我是小助手")]},
            {"day": 3, "at": "10:00", "actions": [_send("第三天：护理小贴士")]},
        ],
    )
    account = app_fake.state.account(TOKEN)
    app_fake.state.request_friend(account, NEWCOMER, hello="扫码加的")
    intake = api.post(f"/plugins/personal_wechat/accounts/{account_id}/intake?idle_seconds=0.2")
    assert intake.status_code == 200, intake.text
    assert intake.json()["ingested"] == 1
    assert account.accepted == [NEWCOMER.wxid]

    customers = api.get("/api/v1/customers?channel=personal_wechat").json()["items"]
    [customer] = customers
    assert customer["display_name"] == "赵同学"
    assert customer["identities"] == [
        {"channel": "personal_wechat", "external_id": NEWCOMER.wxid, "staff_external_id": SELF_ID}
    ]
    run_due(api, by=timedelta(minutes=1))
    texts = [(d.conversation_id, d.content) for d in account.sent]
    assert texts == [(NEWCOMER.wxid, "欢迎！我是小助手")]
    # the same friend request seen again (a reconnecting stream) is not a second customer or greeting
    again = api.post(f"/plugins/personal_wechat/accounts/{account_id}/intake?idle_seconds=0.2")
    assert again.json()["ingested"] == 0
    run_due(api, by=timedelta(days=4))
    assert [d.content for d in account.sent] == ["欢迎！我是小助手", "第三天：护理小贴士"]


def test_messages_and_room_joins_become_sopflow_events(api: Any, app_fake: Any, account_id: int) -> None:
    account = app_fake.state.account(TOKEN)
    app_fake.state.receive_message(account, CONTACTS[0].wxid, "价格多少")
    app_fake.state.join_room(account, Room("2345678901@chatroom", "宝妈交流群"), [CONTACTS[1].wxid])
    assert (
        api.post(f"/plugins/personal_wechat/accounts/{account_id}/intake?idle_seconds=0.2").json()["ingested"]
        == 2
    )
    received = api.get("/api/v1/events?type=message.received").json()["items"]
    assert [e["payload"]["text"] for e in received] == ["价格多少"]
    joined = api.get("/api/v1/events?type=group.joined").json()["items"]
    assert [e["payload"]["room_id"] for e in joined] == ["2345678901@chatroom"]


def test_the_health_page_shows_login_heartbeat_and_todays_counts(
    api: Any, app_fake: Any, account_id: int, manual_clock: Any
) -> None:
    page = f"/plugins/personal_wechat/accounts/{account_id}"
    account = app_fake.state.account(TOKEN)
    app_fake.state.heartbeat(account)
    api.post(f"{page}/intake?idle_seconds=0.2")
    health = api.get(page).json()
    assert health["logged_in"] and health["healthy"] and health["qr_url"] is None
    assert health["today"]["message"] == {"count": 0, "cap": 38}  # warm-up day 0: 300 * 1/8
    app_fake.state.logout(account)
    api.post(f"{page}/intake?idle_seconds=0.2")
    health = api.get(page).json()
    assert not health["logged_in"] and not health["healthy"]
    assert health["qr_url"].startswith("https://login.weixin.qq.com/")
    assert TOKEN not in str(health)
    app_fake.state.login(account)
    api.post(f"{page}/intake?idle_seconds=0.2")
    assert api.get(page).json()["healthy"]
    manual_clock.advance(timedelta(minutes=4))  # no heartbeat for longer than the gap
    assert api.get(page).json()["healthy"] is False
    assert api.get("/plugins/personal_wechat/accounts/999999").status_code == 404


def test_an_unreachable_gateway_is_a_502_naming_the_endpoint_and_nothing_is_lost(
    api: Any, app_fake: Any, account_id: int
) -> None:
    app_fake.state.request_friend(app_fake.state.account(TOKEN), NEWCOMER)
    app_fake.stop()
    page = f"/plugins/personal_wechat/accounts/{account_id}"
    down = api.post(f"{page}/intake?idle_seconds=0.2")
    assert down.status_code == 502 and "config.endpoint" in down.json()["detail"]
    assert api.get("/api/v1/customers?channel=personal_wechat").json()["items"] == []
    assert api.get(page).json()["today"]["friend"]["count"] == 0


def test_the_console_shows_the_login_qr_while_logged_out(api: Any, app_fake: Any, account_id: int) -> None:
    """register_console_pages: the account's health on the console's channels page,
    and a QR code to scan while it is logged out."""
    import re

    page = f"/plugins/personal_wechat/accounts/{account_id}"
    account = app_fake.state.account(TOKEN)
    client = api.client
    form = client.get("/console/sign-in").text
    token = re.search(r'name="_sign_in" value="([^"]+)"', form).group(1)
    signed = client.post(
        "/console/sign-in", data={"api_key": api.key, "_sign_in": token}, follow_redirects=False
    )
    assert signed.status_code == 303
    app_fake.state.heartbeat(account)
    api.post(f"{page}/intake?idle_seconds=0.2")
    shown = client.get("/console/channels").text
    assert 'data-plugin="personal_wechat"' in shown and "login-qr" not in shown
    app_fake.state.logout(account)
    api.post(f"{page}/intake?idle_seconds=0.2")
    shown = client.get("/console/channels", params={"lang": "zh"}).text
    assert '<figure class="login-qr"><svg' in shown and "扫码登录" in shown and TOKEN not in shown


def test_a_restriction_pauses_the_account_and_tells_its_staff_member_once(
    api: Any, app_fake: Any, sopflow_app: Any, manual_clock: Any
) -> None:
    from sopflow.engine.delivery.sends import channel_for
    from sopflow.host import PluginHost
    from sopflow_personal_wechat.accounts import run_intake

    wechaty = app_fake.adapter == "wechaty"
    config = {"adapter": app_fake.adapter, "endpoint": app_fake.endpoint, "tls": False}
    made = api.post(
        "/api/v1/channel-accounts",
        json={
            "channel": "personal_wechat",
            "name": "staff01",
            "config": {**config, "notify_staff": "zhangsan", "notify_channel": "log"},
            "secrets": {"token": TOKEN} if wechaty else {},
        },
    )
    assert made.status_code == 201, made.text
    _sop(api, [{"delay": "0m", "actions": [_send("欢迎！")]}])
    account = app_fake.state.account(TOKEN)
    account.tolerance.per_minute = 0  # risk control refuses the next send
    app_fake.state.request_friend(account, NEWCOMER)
    host = PluginHost(sopflow_app, "personal_wechat")
    run_intake(host)  # the friend is accepted and the greeting's send is refused
    run_due(api, by=timedelta(minutes=1))
    health = api.get(f"/plugins/personal_wechat/accounts/{made.json()['id']}").json()
    assert health["restrictions"] == 1 and health["paused_until"] is not None
    run_intake(host)  # the next intake run tells the staff member
    run_intake(host)  # and the one after tells nobody twice
    log = channel_for(sopflow_app, api.tenant_id, "log")[0]
    notices = [m for m in log.sent if m.touchpoint == "staff_notice"]
    assert [m.staff_external_id for m in notices] == ["zhangsan"]
    assert "staff01" in notices[0].text and "restricted" in notices[0].text
    assert account.sent == []  # nothing went out while paused


def test_a_moments_step_is_skipped_with_the_reason_never_faked(
    api: Any, app_fake: Any, account_id: int
) -> None:
    """Neither gateway can post moments: the touch ends skipped, saying so, and
    nothing goes out in its place."""
    moment = {"type": "send", "channel": "personal_wechat", "touchpoint": "moments", "text": "新品上架"}
    _sop(api, [{"day": 1, "at": "10:00", "actions": [moment]}])
    account = app_fake.state.account(TOKEN)
    app_fake.state.request_friend(account, NEWCOMER, hello="hi")
    assert (
        api.post(f"/plugins/personal_wechat/accounts/{account_id}/intake?idle_seconds=0.2").status_code == 200
    )
    run_due(api, by=timedelta(days=2))
    [touch] = api.get("/api/v1/touches").json()["items"]
    assert touch["status"] == "skipped", touch
    assert "cannot post moments" in touch["outcome"]["reason"]
    assert account.sent == []

"""The chat sidebar (侧边栏) in a real headless Chromium, against sopflow over real
HTTP and the fake WeCom: opened with the OAuth code WeCom redirects with, signed
with the shared jsapi tickets, it shows the customer whose chat is open — that
tenant's, followed by that member — with today's touches.  WeCom's JS bridge is a
test shim injected by the test (never part of the page)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa
from sopflow_sdk.testing import LiveServer
from sopflow_sdk.testing.browser import Chromium
from sopflow_sdk.testing.harness import ApiClient, new_tenant
from sopflow_wecom.fake import FakeWeCom
from sopflow_wecom.jsapi import js_signature
from wecom_support import CALLBACK_AES_KEY, CALLBACK_TOKEN, WeComApp

STAFF, OTHER_STAFF = "zhangsan", "lisi"

#: WeCom's JS bridge as the page sees it inside WeCom: records what the page
#: configured and answers getCurExternalContact with the chat's customer.
SHIM = """
window.__wx = {config: null, agentConfig: null};
window.wx = {
  config: function (c) { window.__wx.config = c; },
  ready: function (f) { f(); },
  error: function () {},
  agentConfig: function (c) { window.__wx.agentConfig = c; c.success({}); },
  invoke: function (name, args, cb) {
    cb({err_msg: name + ":ok", userId: %s});
  },
};
"""


@pytest.fixture
def live(test_client: Any) -> Iterator[str]:
    with LiveServer(test_client.app) as server:
        yield server.base_url


def _browser(chat_customer: str) -> Chromium:
    b = Chromium().__enter__()
    b.call("Page.addScriptToEvaluateOnNewDocument", source=SHIM % json.dumps(chat_customer))
    return b


def _sop(env: WeComApp) -> None:
    step = {"type": "send", "channel": "wecom", "touchpoint": "private_chat"}
    definition = {
        "kind": "new_customer",
        "target": {"sources": ["qr"]},
        "steps": [{"delay": "0m", "actions": [{**step, "text": "您好"}]}],
    }
    made = env.api.post("/api/v1/sops", json={"name": "新客跟进", "definition": definition})
    assert made.status_code == 201, made.text
    assert env.api.post(f"/api/v1/sops/{made.json()['id']}/start").status_code == 200


def _customer_id(env: WeComApp, external_userid: str) -> int:
    [found] = [
        c
        for c in env.all("/api/v1/customers?channel=wecom")
        if any(i["external_id"] == external_userid for i in c.get("identities", []))
    ] or [None]
    assert found, f"no customer holds {external_userid}"
    return int(found["id"])


def test_the_sidebar_shows_the_open_chats_customer_to_the_member_who_follows_them(
    wecom_app: WeComApp, sopflow_app: Any, live: str
) -> None:
    env, fake = wecom_app, wecom_app.fake
    _sop(env)
    fake.add_staff(OTHER_STAFF)
    fake.add_customer(STAFF, "wmA", name="王小明", state="qr", welcome=False)
    cid = _customer_id(env, "wmA")
    edited = env.api.patch(f"/api/v1/customers/{cid}", json={"tags_add": ["vip"]})
    assert edited.status_code == 200, edited.text
    page = f"{live}/plugins/wecom/sidebar/{env.account_id}"

    b = _browser("wmA")
    try:
        b.open(f"{page}?code={fake.oauth_code(STAFF)}&state=sidebar#chat")
        b.wait_for("document.getElementById('sidebar').dataset.state === 'shown'")
        text = b.text()
        assert "王小明" in text and "vip" in text and "新客跟进" in text
        assert "scheduled" in text  # the first step, due now: today's touch
        # the page was signed for its own address without the fragment, with the shared tickets
        shown = b.js("JSON.stringify(window.__wx)")
        configs = json.loads(shown)
        url = f"{page}?code=" + b.js("new URLSearchParams(location.search).get('code')") + "&state=sidebar"
        from sopflow.host import PluginHost

        host = PluginHost(sopflow_app, "wecom")
        tickets = host.state(env.api.tenant_id).items("jsapi.ticket.")
        corp = next(v["ticket"] for k, v in tickets.items() if k.endswith(".corp"))
        agent = next(v["ticket"] for k, v in tickets.items() if k.endswith(".agent"))
        c, a = configs["config"], configs["agentConfig"]
        assert c["signature"] == js_signature(corp, c["nonceStr"], c["timestamp"], url)
        assert a["signature"] == js_signature(agent, a["nonceStr"], a["timestamp"], url)
        assert a["jsApiList"] == ["getCurExternalContact"] and str(a["agentid"]) == "1000002"
        assert corp not in shown and agent not in shown  # the tickets never reach the page
        # a reload without the code keeps the session (the cookie); the used code is refused
        b.open(page)
        b.wait_for("document.getElementById('sidebar').dataset.state === 'shown'")
        assert "王小明" in b.text()
        cookie = b.call("Network.getCookies", urls=[page])["cookies"]
        [session] = [k for k in cookie if k["name"] == "sopflow_wecom_sidebar"]
        assert session["httpOnly"] and session["sameSite"] == "Strict"
        assert b.js("document.cookie") == ""  # no script reads it
    finally:
        b.__exit__(None, None, None)
    assert fake.count("get_jsapi_ticket") == 1 and fake.count("ticket/get") == 1  # cached


def test_no_identity_a_used_code_and_another_corps_code_are_refused(wecom_app: WeComApp, live: str) -> None:
    env, fake = wecom_app, wecom_app.fake
    fake.add_customer(STAFF, "wmA", welcome=False)
    page = f"{live}/plugins/wecom/sidebar/{env.account_id}"
    b = _browser("wmA")
    try:
        b.open(page)  # no code, no session
        assert "Open the sidebar from a customer's chat in WeCom" in b.text()
        assert b.js("document.getElementById('sidebar')") is None
        code = fake.oauth_code(STAFF)
        b.open(f"{page}?code={code}&state=x")
        b.wait_for("document.getElementById('sidebar')")
        b2 = _browser("wmA")
        try:
            b2.open(f"{page}?code={code}&state=x")  # the same code again (another browser)
            assert "WeCom did not confirm who you are" in b2.text()
            with FakeWeCom(clock=fake.clock) as other_corp:
                other_corp.add_staff(STAFF)
                b2.open(f"{page}?code={other_corp.oauth_code(STAFF)}&state=x")
                assert "WeCom did not confirm who you are" in b2.text()
            b2.open(f"{page}?code={fake.oauth_code('an-outsider')}&state=x")  # WeCom gives an openid
            assert "not a member of the corp" in b2.text()
            b2.open(page)
            assert "Open the sidebar from a customer's chat in WeCom" in b2.text()  # no session made
        finally:
            b2.__exit__(None, None, None)
    finally:
        b.__exit__(None, None, None)


def test_only_the_tenants_customer_whom_the_member_follows_is_shown(
    wecom_app: WeComApp, sopflow_app: Any, test_client: Any, live: str
) -> None:
    env, fake = wecom_app, wecom_app.fake
    fake.add_staff(STAFF)
    fake.add_staff(OTHER_STAFF)
    fake.add_customer(OTHER_STAFF, "wmB", name="只属于李四", welcome=False)
    # another tenant, on another corp, whose customer the same userid follows
    other_tenant, key = new_tenant(sopflow_app, "other")
    other_api = ApiClient(test_client, key, other_tenant)
    with FakeWeCom(clock=fake.clock) as other_corp:
        made = other_api.post(
            "/api/v1/channel-accounts",
            json={
                "channel": "wecom",
                "name": "other",
                "config": {
                    "corp_id": other_corp.corp_id,
                    "agent_id": 1000002,
                    "base_url": other_corp.base_url,
                },
                "secrets": {
                    "secret": other_corp.secret,
                    "callback_token": CALLBACK_TOKEN,
                    "encoding_aes_key": CALLBACK_AES_KEY,
                },
            },
        )
        assert made.status_code == 201, made.text
        other_corp.set_callback(
            f"{live}/plugins/wecom/callback/{made.json()['id']}", CALLBACK_TOKEN, CALLBACK_AES_KEY
        )
        other_corp.add_customer(STAFF, "wmX", name="别家客户", welcome=False)
        assert other_api.get("/api/v1/customers").json()["items"]  # the other tenant has them
    page = f"{live}/plugins/wecom/sidebar/{env.account_id}"
    for chat, refusal, hidden in (
        ("wmB", "You do not follow this customer", "只属于李四"),
        ("wmX", "This customer is not in sopflow yet", "别家客户"),
    ):
        b = _browser(chat)
        try:
            b.open(f"{page}?code={fake.oauth_code(STAFF)}&state=x")
            b.wait_for("document.getElementById('sidebar').dataset.state === 'refused'")
            assert refusal in b.text() and hidden not in b.text()
        finally:
            b.__exit__(None, None, None)


def _touch(app: Any) -> tuple[str, dict[str, Any]]:
    from sopflow.models import Touch

    with app.tx() as s:
        [(status, outcome)] = s.execute(sa.select(Touch.status, Touch.outcome)).all()
    return status, outcome


def test_sent_on_a_mass_send_the_member_sends_from_the_chat_is_recorded_once(
    wecom_app: WeComApp, sopflow_app: Any, live: str
) -> None:
    from sopflow.engine.delivery.dispatch import run_until_idle

    env, fake = wecom_app, wecom_app.fake
    _sop(env)
    fake.add_customer(STAFF, "wmA", name="王小明", state="qr", welcome=False)
    assert run_until_idle(sopflow_app) == 1  # a mass-send task, waiting for zhangsan to send it
    assert _touch(sopflow_app)[0] == "pending"
    page = f"{live}/plugins/wecom/sidebar/{env.account_id}"
    shown = "document.getElementById('sidebar').dataset.state === 'shown'"
    b = _browser("wmA")
    try:
        b.open(f"{page}?code={fake.oauth_code(STAFF)}&state=x")
        b.wait_for(shown)
        form = "document.querySelector('#touches form')"
        tap = b.js(f"JSON.stringify([{form}.action, new URLSearchParams(new FormData({form})).toString()])")
        # tapped before sending it in WeCom: WeCom's word is that it is not sent; nothing recorded
        b.click("#touches form button")
        b.wait_for(shown)
        assert "WeCom has not seen this message sent yet" in b.text()
        assert _touch(sopflow_app)[0] == "pending"
        for msgid in list(fake.tasks):  # the member sends it from the chat
            fake.confirm(msgid, STAFF)
        b.click("#touches form button")
        b.wait_for(shown)
        assert "Recorded as sent" in b.text()
        status, outcome = _touch(sopflow_app)
        assert status == "sent" and outcome["confirmed"] == "sent"
        polls = fake.count("externalcontact/get_groupmsg_send_result")
        # a second tap (the same form posted again) and a reload change nothing
        action, body = json.loads(tap)
        again = (
            f"fetch({json.dumps(action)}, {{method: 'POST', credentials: 'same-origin', "
            f"headers: {{'Content-Type': 'application/x-www-form-urlencoded'}}, body: {json.dumps(body)}}})"
            ".then(r => { window.__again = r.status; })"
        )
        b.js(again)
        b.wait_for("window.__again")
        assert b.js("window.__again") == 200  # followed to the page: "recorded"
        b.open(page)
        b.wait_for(shown)
        assert _touch(sopflow_app) == (status, outcome)
        assert fake.count("externalcontact/get_groupmsg_send_result") == polls  # WeCom not asked again
        # without the session's CSRF token the tap is refused
        forged = again.replace("_csrf=", "_csrf=x").replace("window.__again", "window.__forged")
        b.js(forged)
        b.wait_for("window.__forged")
        assert b.js("window.__forged") == 403
    finally:
        b.__exit__(None, None, None)


def test_the_hosts_overview_lists_todays_touches_and_both_calls_keep_to_the_tenant(
    wecom_app: WeComApp, sopflow_app: Any
) -> None:
    from sopflow.engine.delivery.dispatch import run_until_idle
    from sopflow.host import PluginHost

    env, fake = wecom_app, wecom_app.fake
    step = {"type": "send", "channel": "wecom", "touchpoint": "private_chat"}
    definition = {
        "kind": "new_customer",
        "target": {"sources": ["qr"]},
        "steps": [
            {"delay": "0m", "actions": [{**step, "text": "今天"}]},
            {"day": 2, "at": "10:00", "actions": [{**step, "text": "后天"}]},
        ],
    }
    made = env.api.post("/api/v1/sops", json={"name": "两步", "definition": definition})
    assert env.api.post(f"/api/v1/sops/{made.json()['id']}/start").status_code == 200
    fake.add_customer(STAFF, "wmA", state="qr", welcome=False)
    host = PluginHost(sopflow_app, "wecom")
    tenant = env.api.tenant_id
    overview = host.customer_overview(tenant, "wecom", "wmA")
    assert [s["sop"] for s in overview["sops"]] == ["两步"]
    assert [(t["step_index"], t["status"]) for t in overview["touches"]] == [(0, "scheduled")]  # not day 2's
    other_tenant, _ = new_tenant(sopflow_app, "other")
    assert host.customer_overview(other_tenant, "wecom", "wmA") is None
    assert run_until_idle(sopflow_app) == 1
    [touch] = host.customer_overview(tenant, "wecom", "wmA")["touches"]
    for msgid in list(fake.tasks):
        fake.confirm(msgid, STAFF)
    assert host.confirm_touches(other_tenant, [touch["id"]]) == {}  # not that tenant's touch
    assert _touch_status(sopflow_app, touch["id"]) == "pending"
    assert host.confirm_touches(tenant, [touch["id"]]) == {touch["id"]: "sent"}
    assert host.confirm_touches(tenant, [touch["id"]]) == {touch["id"]: "sent"}  # once
    assert host.customer_overview(tenant, "wecom", "wmA")["touches"] == []  # nothing left today


def _touch_status(app: Any, touch_id: int) -> str:
    from sopflow.models import Touch

    with app.tx() as s:
        return str(s.get(Touch, touch_id).status)


def test_a_tenant_with_the_plugin_off_gets_no_sidebar(wecom_app: WeComApp, anon_api: Any) -> None:
    env, fake = wecom_app, wecom_app.fake
    fake.add_staff(STAFF)
    assert env.api.put("/api/v1/plugins/wecom", json={"enabled": False}).status_code == 200
    page = f"/plugins/wecom/sidebar/{env.account_id}"
    opened = anon_api.get(f"{page}?code={fake.oauth_code(STAFF)}&state=x")
    assert opened.status_code in (403, 404) and "set-cookie" not in opened.headers
    assert anon_api.get(page).status_code in (401, 404)


def test_skip_on_a_mass_send_cancels_it_in_wecom_once_and_records_skipped_by_staff(
    wecom_app: WeComApp, sopflow_app: Any, live: str
) -> None:
    from sopflow.engine.delivery.dispatch import run_until_idle

    env, fake = wecom_app, wecom_app.fake
    _sop(env)
    fake.add_customer(STAFF, "wmS", name="王小明", state="qr", welcome=False)
    assert run_until_idle(sopflow_app) == 1
    page = f"{live}/plugins/wecom/sidebar/{env.account_id}"
    shown = "document.getElementById('sidebar').dataset.state === 'shown'"
    b = _browser("wmS")
    try:
        b.open(f"{page}?code={fake.oauth_code(STAFF)}&state=x")
        b.wait_for(shown)
        form = "document.querySelector('#touches form[data-tap=skip]')"
        action, body = json.loads(
            b.js(f"JSON.stringify([{form}.action, new URLSearchParams(new FormData({form})).toString()])")
        )
        b.click("#touches form[data-tap=skip] button")
        b.wait_for(shown)
        assert "Skipped: it will not be sent" in b.text()
        status, outcome = _touch(sopflow_app)
        assert status == "skipped" and outcome["reason"] == "skipped_by_staff"
        assert outcome["tap"]["staff"] == f"wecom_sidebar:{env.account_id}:{STAFF}"
        assert [t.cancelled for t in fake.tasks.values()] == [True]  # the member can no longer send it
        assert fake.count("externalcontact/cancel_groupmsg_send") == 1
        assert "#touches form" not in b.js("document.getElementById('sidebar').innerHTML")
        again = (
            f"fetch({json.dumps(action)}, {{method: 'POST', credentials: 'same-origin', "
            f"headers: {{'Content-Type': 'application/x-www-form-urlencoded'}}, body: {json.dumps(body)}}})"
            ".then(r => { window.__again = r.status; })"
        )
        b.js(again)
        b.wait_for("window.__again")
        assert _touch(sopflow_app) == (status, outcome)  # a second skip changes nothing
        assert fake.count("externalcontact/cancel_groupmsg_send") == 1
        forged = again.replace("_csrf=", "_csrf=x").replace("window.__again", "window.__forged")
        b.js(forged)
        b.wait_for("window.__forged")
        assert b.js("window.__forged") == 403
    finally:
        b.__exit__(None, None, None)


def _events(app: Any, customer_id: int) -> list[Any]:
    from sopflow.models import Event

    with app.tx() as s:
        q = sa.select(Event.source, Event.payload).where(
            Event.customer_id == customer_id, Event.type == "customer.updated"
        )
        return [tuple(r) for r in s.execute(q.order_by(Event.id))]


def test_the_member_edits_fields_and_tags_audited_and_a_bad_value_changes_nothing(
    wecom_app: WeComApp, sopflow_app: Any, live: str
) -> None:
    env, fake = wecom_app, wecom_app.fake
    made = env.api.post("/api/v1/fields", json={"key": "budget", "type": "number", "label": "Budget 预算"})
    assert made.status_code == 201, made.text
    fake.add_customer(STAFF, "wmE", name="王小明", state="qr", welcome=False)
    cid = _customer_id(env, "wmE")
    page = f"{live}/plugins/wecom/sidebar/{env.account_id}"
    shown = "document.getElementById('sidebar').dataset.state === 'shown'"
    typing = "document.querySelector('#edit [name=\"{}\"]').value = {};"
    b = _browser("wmE")
    try:
        b.open(f"{page}?code={fake.oauth_code(STAFF)}&state=x")
        b.wait_for(shown)
        before = _events(sopflow_app, cid)  # the customer's arrival from WeCom
        b.js(typing.format("field.budget", json.dumps("1200")) + typing.format("tags", json.dumps("vip, 热")))
        b.click("#edit button")
        b.wait_for(shown)
        assert "Saved" in b.text() and "1200" in b.text() and "热" in b.text()
        after = env.api.get(f"/api/v1/customers/{cid}").json()
        assert after["fields"]["budget"] == 1200 and sorted(after["tags"]) == ["vip", "热"]
        [(source, payload)] = _events(sopflow_app, cid)[len(before) :]
        assert source == "wecom" and payload["actor"] == f"wecom_sidebar:{env.account_id}:{STAFF}"
        assert payload["changed"] == ["fields", "tags_add"] and sorted(payload["tags_added"]) == ["vip", "热"]

        # a value that is not a number: the field's error, what was typed kept, nothing changed
        b.js(typing.format("field.budget", json.dumps("lots")) + typing.format("tags", json.dumps("")))
        b.click("#edit button")
        b.wait_for("document.getElementById('error-field.budget') !== null")
        assert "budget" in b.js("document.getElementById('error-field.budget').textContent")
        assert b.js("document.querySelector('#edit [name=\"field.budget\"]').value") == "lots"
        assert env.api.get(f"/api/v1/customers/{cid}").json() == after
        assert len(_events(sopflow_app, cid)) == len(before) + 1
    finally:
        b.__exit__(None, None, None)


def _sessions(app: Any, tenant_id: int) -> dict[str, Any]:
    from sopflow.host import PluginHost

    return PluginHost(app, "wecom").state(tenant_id).items("sidebar.session.")


def test_sign_out_deletes_the_session_once_csrf_checked_and_expired_sessions_are_pruned(
    wecom_app: WeComApp, sopflow_app: Any, manual_clock: Any, live: str
) -> None:
    from datetime import timedelta

    env, fake = wecom_app, wecom_app.fake
    fake.add_staff(OTHER_STAFF)
    fake.add_customer(STAFF, "wmO", name="王小明", state="qr", welcome=False)
    page = f"{live}/plugins/wecom/sidebar/{env.account_id}"
    shown = "document.getElementById('sidebar').dataset.state === 'shown'"
    tenant = env.api.tenant_id
    # lisi's session from yesterday has expired: it goes at the next sign-in or sign-out
    stale = _browser("wmO")
    try:
        stale.open(f"{page}?code={fake.oauth_code(OTHER_STAFF)}&state=x")
    finally:
        stale.__exit__(None, None, None)
    assert len(_sessions(sopflow_app, tenant)) == 1
    manual_clock.advance(timedelta(hours=9))
    b = _browser("wmO")
    try:
        b.open(f"{page}?code={fake.oauth_code(STAFF)}&state=x")
        b.wait_for(shown)
        [live_session] = _sessions(sopflow_app, tenant).values()  # the expired one was pruned
        assert live_session["userid"] == STAFF
        # a sign-out without the session's CSRF token is refused and keeps the session
        forged = (
            f"fetch({json.dumps(page + '/sign-out')}, {{method: 'POST', credentials: 'same-origin', "
            "headers: {'Content-Type': 'application/x-www-form-urlencoded'}, body: '_csrf=forged'})"
            ".then(r => { window.__forged = r.status; })"
        )
        b.js(forged)
        b.wait_for("window.__forged")
        assert b.js("window.__forged") == 403 and len(_sessions(sopflow_app, tenant)) == 1
        b.click("#sign-out button")
        b.wait_for("document.getElementById('signed-out') !== null")
        assert "Signed out" in b.text()
        assert _sessions(sopflow_app, tenant) == {}
        assert not [
            k
            for k in b.call("Network.getCookies", urls=[page])["cookies"]
            if k["name"] == "sopflow_wecom_sidebar"
        ]
        b.open(page)  # no session any more
        assert "your session has ended" in b.text()
    finally:
        b.__exit__(None, None, None)


def test_sent_on_a_manual_touch_is_the_members_word_and_wecom_is_not_asked(
    wecom_app: WeComApp, sopflow_app: Any, live: str
) -> None:
    from sopflow.engine.delivery.dispatch import run_until_idle

    env, fake = wecom_app, wecom_app.fake
    definition = {
        "kind": "new_customer",
        "target": {"sources": ["qr"]},
        "steps": [
            {"delay": "0m", "actions": [{"type": "send", "channel": "manual", "text": "call them: 回访电话"}]}
        ],
    }
    made = env.api.post("/api/v1/sops", json={"name": "回访", "definition": definition})
    assert made.status_code == 201, made.text
    assert env.api.post(f"/api/v1/sops/{made.json()['id']}/start").status_code == 200
    fake.add_customer(STAFF, "wmM", name="王小明", state="qr", welcome=False)
    assert run_until_idle(sopflow_app) == 1
    assert _touch(sopflow_app)[0] == "pending" and not fake.tasks  # nothing went to WeCom
    b = _browser("wmM")
    try:
        b.open(f"{live}/plugins/wecom/sidebar/{env.account_id}?code={fake.oauth_code(STAFF)}&state=x")
        b.wait_for("document.getElementById('sidebar').dataset.state === 'shown'")
        b.click("#touches form[data-tap=sent] button")
        b.wait_for("document.getElementById('sidebar').dataset.state === 'shown'")
        assert "Recorded as sent" in b.text()
        status, outcome = _touch(sopflow_app)
        assert status == "sent" and outcome["tap"]["staff"] == f"wecom_sidebar:{env.account_id}:{STAFF}"
        assert fake.count("externalcontact/get_groupmsg_send_result") == 0
    finally:
        b.__exit__(None, None, None)

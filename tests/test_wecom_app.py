"""The WeCom plugin loaded through its entry point into a real app, with the
fake WeCom calling back over real HTTP with real encryption."""

from __future__ import annotations

import httpx
import pytest
import sqlalchemy as sa
from sopflow_sdk.testing.harness import ApiClient, LiveServer, make_test_app, new_tenant

from tests.conftest import row_counts

TOKEN = "callbacktoken123"
AES_KEY = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"


@pytest.fixture
def wecom_env(sopflow_database, request):
    from litestar.testing import TestClient
    from sopflow.api.app import build_api
    from sopflow.clock import ManualClock
    from sopflow_wecom.fake import FakeWeCom

    clock = ManualClock()
    app = make_test_app(
        sopflow_database.url_for_test(request.node.name), clock=clock, env={"SOPFLOW_PLUGINS": "wecom"}
    )
    tenant_id, key = new_tenant(app, "acme")
    asgi = build_api(app)
    with (
        FakeWeCom(clock=lambda: clock.now().timestamp()) as fake,
        LiveServer(asgi) as live,
        TestClient(asgi) as client,
    ):
        api = ApiClient(client, key, tenant_id)
        account = api.post(
            "/api/v1/channel-accounts",
            json={
                "channel": "wecom",
                "name": "main",
                "config": {"corp_id": fake.corp_id, "agent_id": 1000002, "base_url": fake.base_url},
                "secrets": {"secret": fake.secret, "callback_token": TOKEN, "encoding_aes_key": AES_KEY},
            },
        )
        assert account.status_code == 201, account.text
        url = f"{live.base_url}/plugins/wecom/callback/{account.json()['id']}"
        fake.set_callback(url, TOKEN, AES_KEY)
        yield app, api, fake, url
    app.dispose()


def test_plugin_is_loaded_through_its_entry_point(wecom_env):
    _, api, _, _ = wecom_env
    info = {p["name"]: p for p in api.get("/api/v1/plugins").json()}["wecom"]
    assert info["distribution"] == "sopflow-wecom" and info["enabled"] is True
    assert "register_routes" in info["hooks"]


def test_scan_live_qr_code_creates_customer_with_source(wecom_env):
    _, api, fake, _ = wecom_env
    assert fake.verify_callback_url()
    fake.add_customer("zhangsan", "wmCustomer001", "李雷", state="qr_spring")
    customers = api.get("/api/v1/customers?channel=wecom&external_id=wmCustomer001").json()["items"]
    assert len(customers) == 1
    c = customers[0]
    assert c["source"] == "qr_spring"
    assert c["identities"] == [
        {"channel": "wecom", "external_id": "wmCustomer001", "staff_external_id": "zhangsan"}
    ]
    assert c["owner_staff_id"] is not None
    events = api.get("/api/v1/events?type=customer.added").json()["items"]
    assert len(events) == 1 and events[0]["payload"]["welcome_code"]


def test_replayed_and_forged_callbacks_change_nothing(wecom_env):
    app, _, fake, url = wecom_env
    fake.add_customer("zhangsan", "wmC2", "韩梅梅", state="qr_autumn")
    last = fake.callback_responses[-1]
    before = row_counts(app)
    replay = httpx.post(str(last.request.url), content=last.request.content)
    assert replay.status_code == 200
    assert row_counts(app) == before  # the same message is a duplicate
    query = dict(last.request.url.params)
    forged = httpx.post(url, params={**query, "msg_signature": "0" * 40}, content=last.request.content)
    assert forged.status_code == 403
    assert (
        httpx.post(url, params=query, content=b"<xml><Encrypt>bm90IHJlYWw=</Encrypt></xml>").status_code
        == 403
    )
    assert row_counts(app) == before


def test_disabled_for_tenant_refuses_callbacks(wecom_env):
    app, api, fake, _ = wecom_env
    api.put("/api/v1/plugins/wecom", json={"enabled": False})
    before = row_counts(app)
    fake.add_customer("zhangsan", "wmC3", "x", state="s")
    assert fake.callback_responses[-1].status_code == 404
    assert row_counts(app) == before
    from sopflow.models import Customer

    with app.tx() as s:
        assert s.scalar(sa.select(sa.func.count()).select_from(Customer)) == 0


def test_scan_to_confirmed_mass_send_end_to_end(wecom_env):
    """Live QR code scan → callback → customer with source → new-customer SOP →
    day-N touch as a mass-send task → staff confirms in the fake → touch sent."""
    from datetime import timedelta

    from sopflow.engine.delivery.confirmations import poll_confirmations
    from sopflow.engine.delivery.dispatch import run_until_idle

    from tests.sop_support import touches

    app, api, fake, _ = wecom_env
    manual_clock = app.clock
    sop = api.post(
        "/api/v1/sops",
        json={
            "name": "welcome-series",
            "definition": {
                "kind": "new_customer",
                "target": {"sources": ["qr_spring"]},
                "steps": [
                    {
                        "delay": "0m",
                        "actions": [
                            {
                                "type": "send",
                                "channel": "wecom",
                                "touchpoint": "welcome",
                                "text": "{{ customer.display_name }}，欢迎！",
                            }
                        ],
                    },
                    {
                        "day": 1,
                        "at": "10:00",
                        "actions": [
                            {
                                "type": "send",
                                "channel": "wecom",
                                "touchpoint": "private_chat",
                                "text": "{{ customer.display_name }}，试用感觉怎么样？",
                            }
                        ],
                    },
                ],
            },
        },
    )
    assert sop.status_code == 201, sop.text
    assert api.post(f"/api/v1/sops/{sop.json()['id']}/start").status_code == 200
    fake.add_customer("zhangsan", "wmSpring01", "李雷", state="qr_spring")
    fake.add_customer("zhangsan", "wmAutumn01", "韩梅梅", state="qr_autumn")  # another source: not enrolled
    assert run_until_idle(app) == 1  # the welcome step, due at once
    [welcome] = fake.welcome_messages  # sent within WeCom's 20 s, once, with the fetched name
    assert welcome["text"]["content"] == "李雷，欢迎！"
    welcome_touch, touch = touches(app)
    assert welcome_touch.status == "sent"
    manual_clock.set(touch.due_at)
    dispatched = run_until_idle(app)
    _, touch = touches(app)
    assert dispatched == 1, (touch.status, touch.outcome, touch.due_at, manual_clock.now())
    assert touch.status == "pending", touch.outcome  # WeCom needs the staff member to confirm the mass send
    msgid = touch.outcome["results"][0]["provider_ref"]
    assert poll_confirmations(app) == 0
    fake.confirm(msgid, "zhangsan")
    manual_clock.advance(timedelta(minutes=1))
    assert poll_confirmations(app) == 1
    _, touch = touches(app)
    assert touch.status == "sent" and touch.outcome["confirmed"] == "sent"
    # accepted calls only: an expired token (42001) is refreshed and the call retried once
    sent_to = [r for r in fake.requests if r.path.endswith("add_msg_template") and r.errcode == 0]
    assert len(sent_to) == 1


def test_live_qr_code_through_the_api_then_scan_carries_its_source(wecom_env):
    _app, api, fake, _ = wecom_env
    account_id = api.get("/api/v1/channel-accounts").json()[0]["id"]
    path = f"/plugins/wecom/accounts/{account_id}/live-codes"
    made = api.post(
        path, json={"source": "poster_metro", "staff": ["zhangsan", "lisi"], "remark": "地铁海报"}
    )
    assert made.status_code == 201, made.text
    code = made.json()
    way = fake.contact_ways[code["config_id"]]
    assert (way["state"], way["user"], way["type"]) == ("poster_metro", ["zhangsan", "lisi"], 2)
    fake.add_customer("lisi", "wmMetro01", "王五", state=way["state"])  # a scan of that code
    [customer] = api.get("/api/v1/customers?channel=wecom&external_id=wmMetro01").json()["items"]
    assert customer["source"] == "poster_metro"
    assert api.delete(f"{path}/{code['config_id']}").status_code == 204
    assert code["config_id"] not in fake.contact_ways


def test_live_qr_code_bad_input_and_auth_change_nothing(wecom_env):
    _app, api, fake, _ = wecom_env
    account_id = api.get("/api/v1/channel-accounts").json()[0]["id"]
    path = f"/plugins/wecom/accounts/{account_id}/live-codes"
    too_long = api.post(path, json={"source": "x" * 31, "staff": ["zhangsan"]})
    assert too_long.status_code == 422 and too_long.json()["errors"][0]["field"] == "source"
    no_staff = api.post(path, json={"source": "ok", "staff": []})
    assert no_staff.status_code == 422 and no_staff.json()["errors"][0]["field"] == "staff"
    assert api.client.post(path, json={"source": "ok", "staff": ["a"]}).status_code == 401
    read = api.as_key(api.post("/api/v1/api-keys", json={"scopes": ["read"]}).json()["api_key"])
    refused = read.post(path, json={"source": "x" * 31, "staff": []})  # the scope first, then the body
    assert refused.status_code == 403 and "needs 'admin'" in refused.json()["detail"]
    assert refused.headers["content-type"].startswith("application/problem+json")
    assert api.post(f"/plugins/wecom/accounts/{account_id + 99}/live-codes", json={}).status_code == 404
    assert api.post("/plugins/wecom/accounts/99999999999999999999/live-codes", json={}).status_code == 404
    assert fake.contact_ways == {}


def test_new_customer_gets_the_name_wecom_knows(wecom_env):
    """The callback carries ids only; the plugin fetches the profile and the
    customer's display name is filled in (and a replay fetches nothing again)."""
    _app, api, fake, _ = wecom_env
    fake.add_customer("zhangsan", "wmNamed01", "欧阳娜娜", state="qr_spring")
    [customer] = api.get("/api/v1/customers?channel=wecom&external_id=wmNamed01").json()["items"]
    assert customer["display_name"] == "欧阳娜娜"
    fetches = fake.count("externalcontact/get")
    last = fake.callback_responses[-1]
    httpx.post(str(last.request.url), content=last.request.content)
    assert fake.count("externalcontact/get") == fetches == 1


def _welcome_sop(delay: str = "0m", kind: str = "new_customer", at_step: int = 0) -> dict:
    welcome = {
        "delay": delay,
        "actions": [{"type": "send", "channel": "wecom", "touchpoint": "welcome", "text": "欢迎"}],
    }
    other = {"delay": "1h", "actions": [{"type": "send", "channel": "log", "text": "hi"}]}
    steps = [welcome, other] if at_step == 0 else [other, welcome]
    target = {} if kind == "new_customer" else {"rule": {"tags": {"any_of": ["x"]}}}
    return {"kind": kind, "target": target, "steps": steps}


def test_welcome_step_rules_name_the_path(wecom_env):
    _, api, _, _ = wecom_env
    for definition, field in (
        (_welcome_sop(delay="1h"), "definition.steps[0].actions[0].touchpoint"),
        (_welcome_sop(at_step=1), "definition.steps[1].actions[0].touchpoint"),
        (_welcome_sop(kind="nurture"), "definition.kind"),
    ):
        r = api.post("/api/v1/sops", json={"name": "w", "definition": definition})
        assert r.status_code == 422 and field in [e["field"] for e in r.json()["errors"]], r.text
    assert api.get("/api/v1/sops").json() == []


def test_welcome_code_older_than_20_seconds_is_skipped_not_sent(wecom_env):
    from datetime import timedelta

    from sopflow.engine.delivery.dispatch import run_until_idle

    from tests.sop_support import touches

    app, api, fake, _ = wecom_env
    r = api.post("/api/v1/sops", json={"name": "w", "definition": _welcome_sop()})
    assert api.post(f"/api/v1/sops/{r.json()['id']}/start").status_code == 200
    fake.add_customer("zhangsan", "wmLate01", "迟到", state="s")
    app.clock.advance(timedelta(seconds=21))  # the scheduler was down past WeCom's window
    run_until_idle(app)
    welcome = touches(app)[0]
    assert welcome.status == "skipped" and "20-second" in welcome.outcome["reason"]
    assert fake.welcome_messages == [] and fake.count("externalcontact/send_welcome_msg") == 0

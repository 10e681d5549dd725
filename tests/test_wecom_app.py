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
                "config": {"corp_id": fake.corp_id, "agent_id": 1000002},
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

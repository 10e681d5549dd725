"""One customer across channels: a personal-WeChat friend whose gateway gives a
phone that a WeCom customer already holds lands on that customer, as a second
relation (this account, with the friend request's scene and the account's
remark); the WeCom owner stays.  Over real gRPC against the fake puppet service."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from sopflow_personal_wechat.fake import start_fake
from sopflow_personal_wechat.fake.scenario import SELF_ID, TOKEN
from sopflow_personal_wechat.port import Contact


@pytest.fixture
def wechaty_account(api: Any, manual_clock: Any) -> Iterator[tuple[Any, int]]:
    with start_fake(lambda: manual_clock.now().timestamp()) as fake:
        made = api.post(
            "/api/v1/channel-accounts",
            json={
                "channel": "personal_wechat",
                "name": "staff01",
                "config": {"adapter": "wechaty", "endpoint": fake.endpoint, "tls": False},
                "secrets": {"token": TOKEN},
            },
        )
        assert made.status_code == 201, made.text
        yield fake, int(made.json()["id"])


def test_a_friend_with_the_phone_of_a_wecom_customer_lands_on_that_customer(
    api: Any, wechaty_account: tuple[Any, int]
) -> None:
    fake, account_id = wechaty_account
    wecom = {"channel": "wecom", "external_id": "wmLi", "staff_external_id": "zhangsan"}
    made = api.post(
        "/api/v1/customers",
        json={
            "display_name": "李女士",
            "identities": [wecom, {"channel": "phone", "external_id": "13800000001"}],
        },
    )
    assert made.status_code == 201, made.text
    customer_id = made.json()["id"]
    owner = made.json()["owner_staff_id"]

    friend = Contact("wxid_li", name="李女士", remark="老客户李", phones=("13800000001",))
    account = fake.state.account(TOKEN)
    fake.state.request_friend(account, friend, hello="我是李女士")
    intake = api.post(f"/plugins/personal_wechat/accounts/{account_id}/intake?idle_seconds=0.2")
    assert intake.status_code == 200, intake.text

    [customer] = api.get("/api/v1/customers?channel=personal_wechat").json()["items"]
    assert customer["id"] == customer_id, "one person, one customer"
    assert customer["owner_staff_id"] == owner  # the WeCom member who added first
    rels = [(r["channel"], r["staff_external_id"], r["remark"], r["active"]) for r in customer["relations"]]
    assert rels == [("wecom", "zhangsan", None, True), ("personal_wechat", SELF_ID, "老客户李", True)]
    assert customer["relations"][1]["source"].startswith("scene:")
    assert len(api.get("/api/v1/customers").json()["items"]) == 1


def test_a_friend_with_an_unknown_phone_is_a_new_customer_holding_it(
    api: Any, wechaty_account: tuple[Any, int]
) -> None:
    fake, account_id = wechaty_account
    fake.state.request_friend(fake.state.account(TOKEN), Contact("wxid_new", name="新客", phones=("139",)))
    assert (
        api.post(f"/plugins/personal_wechat/accounts/{account_id}/intake?idle_seconds=0.2").status_code == 200
    )
    [customer] = api.get("/api/v1/customers?channel=phone&external_id=139").json()["items"]
    assert {i["channel"] for i in customer["identities"]} == {"personal_wechat", "phone"}
    assert [r["staff_external_id"] for r in customer["relations"]] == [SELF_ID]

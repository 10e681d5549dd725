"""One customer followed by several members: every ``follow_user`` of an external
contact becomes a relation with its own add time, source and remark, the owner
being the first adder; a member deleted by the customer ends only that relation;
WeChat's ``unionid`` and the members' noted phones are shared keys another
channel's identity lands on.  Over real HTTP against the fake WeCom."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from wecom_support import WeComApp


def _customer(env: WeComApp, external_id: str, channel: str = "wecom") -> dict[str, Any]:
    found = env.api.get(f"/api/v1/customers?channel={channel}&external_id={external_id}").json()["items"]
    assert len(found) == 1, found
    return found[0]


def _staff_id(env: WeComApp, external_id: str) -> int:
    return next(m["id"] for m in env.api.get("/api/v1/staff").json() if m["external_id"] == external_id)


def _at(env: WeComApp) -> str:
    return datetime.fromtimestamp(int(env.clock.now().timestamp()), tz=UTC).isoformat()


def test_two_members_add_one_contact_one_customer_two_relations(wecom_app: WeComApp) -> None:
    env, fake = wecom_app, wecom_app.fake
    first_at = _at(env)
    fake.add_customer("zhangsan", "wmTwo", "李雷", state="live-a", welcome=False)
    env.clock.advance(timedelta(hours=5))
    second_at = _at(env)
    fake.add_customer("lisi", "wmTwo", state="live-b", welcome=False, remark="老客户")

    c = _customer(env, "wmTwo")
    assert c["owner_staff_id"] == _staff_id(env, "zhangsan")  # the first adder, not moved by lisi
    got = [
        (r["staff_external_id"], r["added_at"], r["source"], r["remark"], r["active"]) for r in c["relations"]
    ]
    # add time is WeCom's createtime of each follow_user, source its state, remark the member's
    assert got == [
        ("zhangsan", first_at, "live-a", None, True),
        ("lisi", second_at, "live-b", "老客户", True),
    ]
    assert c["source"] == "live-a"

    env.clock.advance(timedelta(seconds=3))
    fake.delete_follow_user("zhangsan", "wmTwo")  # the customer deletes the first member
    c = _customer(env, "wmTwo")
    assert not c["churned"], "lisi still follows the customer"
    assert {r["staff_external_id"]: r["active"] for r in c["relations"]} == {"zhangsan": False, "lisi": True}
    assert c["owner_staff_id"] == _staff_id(env, "zhangsan")

    env.clock.advance(timedelta(seconds=3))
    fake.delete_follow_user("lisi", "wmTwo")
    c = _customer(env, "wmTwo")
    assert c["churned"] and not any(r["active"] for r in c["relations"])


def test_follow_users_added_before_sopflow_become_relations_on_the_next_profile_read(
    wecom_app: WeComApp,
) -> None:
    env, fake = wecom_app, wecom_app.fake
    fake.seed_contact("wangwu", "wmOld", "韩梅梅", remark="展会", createtime=1_700_000_000)
    env.clock.advance(timedelta(seconds=3))
    fake.add_customer("zhangsan", "wmOld", welcome=False)  # the callback names zhangsan only
    c = _customer(env, "wmOld")
    rels = {r["staff_external_id"]: r for r in c["relations"]}
    assert set(rels) == {"wangwu", "zhangsan"}
    assert rels["wangwu"]["added_at"] == "2023-11-14T22:13:20+00:00"
    assert rels["wangwu"]["remark"] == "展会" and rels["wangwu"]["source"] == "add_way:0"
    # the owner is whoever sopflow saw add first; the channel's earlier relation is kept, never made owner
    assert c["owner_staff_id"] == _staff_id(env, "zhangsan")


def test_unionid_and_noted_phone_are_shared_keys_for_another_channel(wecom_app: WeComApp) -> None:
    env, fake = wecom_app, wecom_app.fake
    fake.seed_contact("lisi", "wmKey", "Lucy", unionid="oUnion-1", remark_mobiles=["13900000000"])
    fake.add_customer("zhangsan", "wmKey", welcome=False)
    c = _customer(env, "wmKey")
    assert {("unionid", "oUnion-1"), ("phone", "13900000000")} <= {
        (i["channel"], i["external_id"]) for i in c["identities"]
    }
    r = env.api.post(
        "/api/v1/events",
        json={
            "events": [
                {
                    "type": "customer.added",
                    "idempotency_key": "pw-1",
                    "identity": {
                        "channel": "personal_wechat",
                        "external_id": "wxid_lucy",
                        "staff_external_id": "wxid_me",
                    },
                    "shared_identities": [{"channel": "unionid", "external_id": "oUnion-1"}],
                }
            ]
        },
    )
    assert r.status_code == 200, r.text
    assert r.json()["results"][0]["customer_id"] == c["id"]
    rels = [(x["channel"], x["staff_external_id"]) for x in _customer(env, "wmKey")["relations"]]
    assert sorted(rels) == [("personal_wechat", "wxid_me"), ("wecom", "lisi"), ("wecom", "zhangsan")]


def test_a_corp_user_gets_no_unionid(wecom_app: WeComApp) -> None:
    """WeCom gives ``unionid`` for WeChat users only (``type`` 1), as the fake does."""
    fake = wecom_app.fake
    fake.seed_contact("zhangsan", "wmCorp", "Bob", corp_name="ACME", unionid="oUnion-2")
    assert "unionid" not in fake.contacts["wmCorp"]["external_contact"]


def test_the_import_gives_one_customer_with_a_relation_per_member(wecom_app: WeComApp) -> None:
    env, fake = wecom_app, wecom_app.fake
    fake.seed_contact("anna", "wmImp", "Ivy", createtime=1_700_000_000, unionid="oUnion-3")
    fake.seed_contact("ben", "wmImp", createtime=1_700_086_400, remark="同事介绍", state="expo")
    started = env.api.post(f"{env.base}/import")
    assert started.status_code == 202, started.text
    c = _customer(env, "wmImp")
    got = [(r["staff_external_id"], r["added_at"][:10], r["source"], r["remark"]) for r in c["relations"]]
    assert got == [("anna", "2023-11-14", None, None), ("ben", "2023-11-15", "expo", "同事介绍")]
    assert ("unionid", "oUnion-3") in {(i["channel"], i["external_id"]) for i in c["identities"]}

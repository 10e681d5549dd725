"""Corp tags both ways (issue #6) and group-chat sends, against the fake WeCom.

WeCom → sopflow runs through sopflow's API and the callback route over real
HTTP.  sopflow → WeCom runs the ``wecom.mark_tags`` job against the fake; core
does not yet hand ``on_event`` a host, so the job is not wired to events (see
docs/plugins/wecom.md, "Corp tags")."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sopflow_sdk import OutboundMessage, Secret, SkippableError
from sopflow_sdk.testing.plugin_state import LocalState
from sopflow_wecom import store, tags
from sopflow_wecom.channel import WeComChannel
from sopflow_wecom.fake import FakeClock, FakeWeCom
from wecom_support import WeComApp

# -- WeCom → sopflow -------------------------------------------------------------------------------


def _customer(env: WeComApp, external_id: str, channel: str = "wecom") -> dict[str, Any]:
    found = env.api.get(f"/api/v1/customers?channel={channel}&external_id={external_id}").json()["items"]
    assert len(found) == 1, found
    return found[0]


def _tag_events(env: WeComApp) -> list[dict[str, Any]]:
    return [
        e
        for e in env.all("/api/v1/events?type=customer.updated")
        if e["payload"].get("cause") == "wecom_tags"
    ]


def test_console_tags_become_sopflow_tags_and_sopflow_tags_stay(wecom_app: WeComApp) -> None:
    env, fake = wecom_app, wecom_app.fake
    vip, regular = fake.create_corp_tags("客户等级", "VIP", "普通")
    fake.add_customer("zhangsan", "wmTag1", "李雷", welcome=False)
    customer = _customer(env, "wmTag1")
    assert customer["tags"] == []
    patched = env.api.patch(f"/api/v1/customers/{customer['id']}", json={"tags_add": ["手动"]})
    assert patched.status_code == 200, patched.text

    fake.tag_customer("zhangsan", "wmTag1", add=[vip])
    assert fake.callback_responses[-1].status_code == 200
    assert _customer(env, "wmTag1")["tags"] == ["VIP", "手动"]

    env.clock.advance(timedelta(seconds=3))  # callbacks in one second share their key (CreateTime)
    fake.tag_customer("zhangsan", "wmTag1", add=[regular], remove=[vip])
    assert _customer(env, "wmTag1")["tags"] == ["手动", "普通"]  # not a corp tag: sopflow's own stays

    # the add callback's event removes the library's names (none held), the edits change them
    events = _tag_events(env)
    # the payload says what actually changed (core fills it in at ingest)
    assert [(e["payload"]["tags_added"], e["payload"]["tags_removed"]) for e in events] == [
        ([], []),
        (["VIP"], []),
        (["普通"], ["VIP"]),
    ]
    assert {e["source"] for e in events} == {"wecom"}  # what push_request skips: no echo
    assert all(tags.push_request(e) is None for e in events)

    # WeCom retries a callback: a duplicate, no new tag event
    last = fake.callback_responses[-1]
    assert httpx.post(str(last.request.url), content=last.request.content).status_code == 200
    assert len(_tag_events(env)) == 3


def test_new_customer_arrives_with_its_corp_tags(wecom_app: WeComApp) -> None:
    env, fake = wecom_app, wecom_app.fake
    [vip] = fake.create_corp_tags("客户等级", "VIP")
    fake.add_customer("lisi", "wmTag2", "韩梅梅", welcome=False, tag_ids=[vip])
    assert _customer(env, "wmTag2")["tags"] == ["VIP"]


def test_renamed_and_deleted_corp_tags_follow(wecom_app: WeComApp) -> None:
    env, fake = wecom_app, wecom_app.fake
    vip, other = fake.create_corp_tags("客户等级", "VIP", "普通")
    fake.add_customer("zhangsan", "wmR1", welcome=False)
    fake.add_customer("zhangsan", "wmR2", welcome=False)
    fake.tag_customer("zhangsan", "wmR1", add=[vip])
    fake.tag_customer("zhangsan", "wmR2", add=[other])

    env.clock.advance(timedelta(seconds=3))
    fake.rename_corp_tag(vip, "VIP客户")
    assert _customer(env, "wmR1")["tags"] == ["VIP客户"]
    assert _customer(env, "wmR2")["tags"] == ["普通"]  # did not hold the tag: untouched

    env.clock.advance(timedelta(seconds=3))
    fake.delete_corp_tag(other)
    assert _customer(env, "wmR2")["tags"] == []
    assert _customer(env, "wmR1")["tags"] == ["VIP客户"]


def test_a_deleted_tag_is_named_after_a_restart(wecom_app: WeComApp) -> None:
    """The delete callback carries only the tag's id: the name comes from the plugin's
    table, which outlives the process (``tags.clear()`` is what a restart does)."""
    env, fake = wecom_app, wecom_app.fake
    [gold] = fake.create_corp_tags("客户等级", "金卡")
    fake.add_customer("zhangsan", "wmD1", welcome=False)
    fake.tag_customer("zhangsan", "wmD1", add=[gold])
    assert _customer(env, "wmD1")["tags"] == ["金卡"]

    tags.clear()  # a restart: no process memory of the library
    env.clock.advance(timedelta(seconds=3))
    fake.delete_corp_tag(gold)
    assert _customer(env, "wmD1")["tags"] == []


def test_a_deleted_tag_this_process_never_saw_is_named_by_wecom(
    wecom_app: WeComApp, sopflow_app: Any
) -> None:
    """The delete callback carries the tag's id only.  When neither this process nor
    the plugin's table knows the tag (its name was never recorded), the plugin asks
    get_corp_tag_list for the id, which still answers for a deleted tag, flagged
    ``deleted`` (document 92117)."""
    env, fake = wecom_app, wecom_app.fake
    vip, regular = fake.create_corp_tags("客户等级", "VIP", "普通")
    fake.add_customer("zhangsan", "wmD1", welcome=False)
    fake.tag_customer("zhangsan", "wmD1", add=[vip, regular])
    assert _customer(env, "wmD1")["tags"] == ["VIP", "普通"]

    tags.clear()  # this process forgets every tag it saw
    with sopflow_app.engine.begin() as conn:  # and no name was ever recorded for it
        conn.execute(store.corp_tags.delete().where(store.corp_tags.c.tag_id == vip))
    env.clock.advance(timedelta(seconds=3))
    fake.delete_corp_tag(vip)
    assert _customer(env, "wmD1")["tags"] == ["普通"]
    lookups = [r.body for r in fake.requests if r.path == "externalcontact/get_corp_tag_list"]
    assert {"tag_id": [vip]} in lookups


# -- sopflow → WeCom -------------------------------------------------------------------------------


class _Account:
    def __init__(self, fake: FakeWeCom, **config: Any) -> None:
        self.id, self.tenant_id, self.channel, self.name = 11, 3, "wecom", "main"
        self.config = {
            "corp_id": fake.corp_id,
            "agent_id": fake.agent_id,
            "base_url": fake.base_url,
            **config,
        }
        self.secrets = {"secret": Secret(fake.secret)}


class _Host(LocalState):
    def __init__(self, account: _Account, clock: FakeClock) -> None:
        super().__init__(store.metadata, lambda _tenant, events: self.ingest(_tenant, events))
        self.account, self.clock = account, clock
        self.ingested: list[Any] = []

    def now(self) -> datetime:
        return datetime.fromtimestamp(self.clock(), tz=UTC)

    def channel_account(self, account_id: int) -> _Account | None:
        return self.account if account_id == self.account.id else None

    def ingest(self, tenant_id: int, events: Any) -> list[dict[str, Any]]:
        self.ingested += events
        return [{"status": "created"} for _ in events]


def _marks(fake: FakeWeCom) -> list[Any]:
    return [r.body for r in fake.requests if r.path == "externalcontact/mark_tag"]


def test_keyword_rule_tags_are_marked_in_wecom(fake: FakeWeCom, clock: FakeClock) -> None:
    vip, old = fake.create_corp_tags("客户等级", "VIP", "老客")
    fake.seed_contact("zhangsan", "wmP1", tag_ids=[old])
    host = _Host(_Account(fake), clock)
    # what core's keyword rules record on their customer.updated event
    keyword_event = {
        "type": "customer.updated",
        "source": "sopflow",
        "payload": {"cause": "keyword_rule", "tags_added": ["VIP", "只在sopflow"], "tags_removed": ["老客"]},
    }
    request = tags.push_request(keyword_event)
    assert request == (["VIP", "只在sopflow"], ["老客"])
    done = tags.mark_tags(host, 11, "wmP1", "zhangsan", *request)
    assert done == {"added": ["VIP"], "removed": ["老客"], "created": [], "unknown": ["只在sopflow"]}
    assert _marks(fake) == [
        {"userid": "zhangsan", "external_userid": "wmP1", "add_tag": [vip], "remove_tag": [old]}
    ]
    assert fake.tags_of("zhangsan", "wmP1") == ["VIP"]
    assert fake.count("externalcontact/add_corp_tag") == 0  # never created implicitly
    assert fake.callback_responses == []  # WeCom sends no callback for API changes: no echo

    # the library is cached per account: a second push reads it no more
    tags.mark_tags(host, 11, "wmP1", "zhangsan", ["老客"], [])
    assert fake.count("externalcontact/get_corp_tag_list") == 1
    clock.advance(tags.LIBRARY_TTL + 1)
    tags.mark_tags(host, 11, "wmP1", "zhangsan", [], ["老客"])
    assert fake.count("externalcontact/get_corp_tag_list") == 2
    assert len(_marks(fake)) == 3


def test_unknown_tags_are_left_alone_unless_configured(fake: FakeWeCom, clock: FakeClock) -> None:
    fake.seed_contact("zhangsan", "wmP2")
    plain = _Host(_Account(fake), clock)
    assert tags.mark_tags(plain, 11, "wmP2", "zhangsan", ["新标签"], ["也没有"])["unknown"] == ["新标签"]
    assert _marks(fake) == [] and fake.tag_groups == []

    tags.clear()
    creating = _Host(_Account(fake, create_missing_tags=True), clock)
    done = tags.mark_tags(creating, 11, "wmP2", "zhangsan", ["新标签"], [])
    assert done["created"] == ["新标签"] and done["added"] == ["新标签"]
    assert [g["group_name"] for g in fake.tag_groups] == ["sopflow"]
    assert fake.tags_of("zhangsan", "wmP2") == ["新标签"]
    # a second customer reuses the tag the first one created
    fake.seed_contact("zhangsan", "wmP3")
    tags.mark_tags(creating, 11, "wmP3", "zhangsan", ["新标签"], [])
    assert fake.count("externalcontact/add_corp_tag") == 1
    assert [t["name"] for t in fake.tag_groups[0]["tag"]] == ["新标签"]


def test_marking_a_customer_the_member_lost_is_skipped(fake: FakeWeCom, clock: FakeClock) -> None:
    """84061: the customer deleted the member (or was handed to another) before the
    job ran; nothing to mark, nothing to retry."""
    [vip] = fake.create_corp_tags("客户等级", "VIP")
    fake.seed_contact("zhangsan", "wmP5")
    fake.delete_follow_user("zhangsan", "wmP5")
    done = tags.mark_tags(_Host(_Account(fake), clock), 11, "wmP5", "zhangsan", ["VIP"], [])
    assert done["skipped"] is True and done["added"] == []
    assert [r.errcode for r in fake.requests if r.path == "externalcontact/mark_tag"] == [84061]
    assert vip not in fake.contacts["wmP5"]["follow"].get("zhangsan", {}).get("tag_id", [])


def test_echo_events_and_tagless_events_push_nothing() -> None:
    assert tags.push_request({"source": "wecom", "payload": {"tags_added": ["VIP"]}}) is None
    assert tags.push_request({"source": "api", "payload": {"changed": ["tags_add"]}}) is None
    assert tags.push_request({"source": "sopflow", "payload": {"tags_removed": ["VIP"]}}) == ([], ["VIP"])


def test_fake_mark_tag_refuses_unknown_ids_and_empty_calls(fake: FakeWeCom, client: Any) -> None:
    from sopflow_sdk import FatalError

    fake.seed_contact("zhangsan", "wmP4")
    with pytest.raises(FatalError, match="40068"):
        client.mark_tag("zhangsan", "wmP4", add_tag=["etNOPE"])
    with pytest.raises(FatalError, match="40058"):
        client.mark_tag("zhangsan", "wmP4")


# -- group chats -----------------------------------------------------------------------------------


def test_group_callback_makes_a_group_customer(wecom_app: WeComApp) -> None:
    env, fake = wecom_app, wecom_app.fake
    fake.create_group("wrGroup1", "zhangsan", "VIP客户群", members=["zhangsan", "wmA"])
    group = _customer(env, "wrGroup1", channel="wecom_group")
    assert group["source"] == "wecom_group"
    assert group["identities"] == [
        {"channel": "wecom_group", "external_id": "wrGroup1", "staff_external_id": None}
    ]


@pytest.fixture
def channel(fake: FakeWeCom, clock: FakeClock) -> WeComChannel:
    config = {"corp_id": fake.corp_id, "agent_id": fake.agent_id, "base_url": fake.base_url}
    return WeComChannel(config, {"secret": fake.secret}, clock=clock)


def _group_msg(recipient: dict[str, Any], staff: str | None = "lisi") -> OutboundMessage:
    return OutboundMessage(
        touchpoint="group_chat",
        text="群发",
        idempotency_key="touch-g",
        recipient=recipient,
        staff_external_id=staff,
    )


def test_group_send_uses_the_group_identity_and_its_owner(fake: FakeWeCom, channel: WeComChannel) -> None:
    fake.add_group("wrG1", "zhangsan", "VIP客户群")
    # what core's _recipient builds for a group customer (no wecom identity, no staff)
    recipient = {
        "customer_id": 5,
        "identities": [{"channel": "wecom_group", "external_id": "wrG1", "staff_userid": None}],
    }
    receipt = channel.send(_group_msg(recipient))
    assert receipt.status == "pending"
    [sent] = [r.body for r in fake.requests if r.path == "externalcontact/add_msg_template"]
    assert sent["chat_type"] == "group" and sent["chat_id_list"] == ["wrG1"]
    assert sent["sender"] == "zhangsan"  # the owner, not the customer's staff member
    assert channel.poll(receipt.provider_ref) == {"wrG1": "pending"}
    fake.confirm(receipt.provider_ref, "zhangsan")
    assert channel.poll(receipt.provider_ref) == {"wrG1": "sent"}


def test_group_send_without_a_group_is_skipped(fake: FakeWeCom, channel: WeComChannel) -> None:
    person = {"external_id": "wmA", "identities": [{"channel": "wecom", "external_id": "wmA"}]}
    with pytest.raises(SkippableError, match="no WeCom customer group"):
        channel.send(_group_msg(person))
    with pytest.raises(SkippableError, match="gone or not visible"):
        channel.send(_group_msg({"chat_id": "wrDismissed"}))
    assert fake.count("externalcontact/add_msg_template") == 0


def test_tags_changed_in_sopflow_are_marked_in_wecom_end_to_end(wecom_app: WeComApp) -> None:
    """API tag change → customer.updated with tags_added → on_event → wecom.mark_tags job → mark_tag."""
    env, fake = wecom_app, wecom_app.fake
    [vip] = fake.create_corp_tags("客户等级", "VIP")
    fake.add_customer("zhangsan", "wmE2E", "韩梅梅", welcome=False)
    customer = _customer(env, "wmE2E")
    before = len(_marks(fake))
    r = env.api.patch(f"/api/v1/customers/{customer['id']}", json={"tags_add": ["VIP", "仅在sopflow"]})
    assert r.status_code == 200, r.text
    marks = _marks(fake)[before:]
    assert len(marks) == 1 and marks[0]["add_tag"] == [vip] and marks[0]["external_userid"] == "wmE2E"
    assert marks[0]["userid"] == "zhangsan"
    # WeCom does not call back for API changes, and a repeat of the same change marks nothing
    env.api.patch(f"/api/v1/customers/{customer['id']}", json={"tags_add": ["VIP"]})
    assert len(_marks(fake)) == before + 1

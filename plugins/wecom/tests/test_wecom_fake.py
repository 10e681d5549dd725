"""The fake WeCom's documented behaviours, driven through the real client."""

from __future__ import annotations

import pytest
from sopflow_sdk import SkippableError
from sopflow_wecom.client import WeComClient
from sopflow_wecom.fake import FakeClock, FakeWeCom

DAY = 86_400.0


def statuses(client: WeComClient, msgid: str, userid: str) -> dict[str, int]:
    result = client.get_groupmsg_send_result(msgid, userid)
    return {row["external_userid"]: row["status"] for row in result["send_list"]}


def test_mass_send_waits_for_staff_confirmation(fake: FakeWeCom, client: WeComClient) -> None:
    fake.add_customer("zhangsan", "wmA", welcome=False)
    fake.add_customer("zhangsan", "wmB", welcome=False)
    fake.add_customer("lisi", "wmC", welcome=False)
    sent = client.add_msg_template(external_userid=["wmA", "wmB", "wmC", "wmNOBODY"], text="hi")
    msgid = sent["msgid"]
    assert sent["fail_list"] == ["wmNOBODY"]
    assert statuses(client, msgid, "zhangsan") == {"wmA": 0, "wmB": 0}
    tasks = {t["userid"]: t["status"] for t in client.get_groupmsg_task(msgid)["task_list"]}
    assert tasks == {"zhangsan": 0, "lisi": 0}

    fake.delete_follow_user("zhangsan", "wmB")  # wmB removes the member before they confirm
    fake.confirm(msgid, "zhangsan")
    assert statuses(client, msgid, "zhangsan") == {"wmA": 1, "wmB": 2}
    assert statuses(client, msgid, "lisi") == {"wmC": 0}
    tasks = {t["userid"]: t["status"] for t in client.get_groupmsg_task(msgid)["task_list"]}
    assert tasks == {"zhangsan": 2, "lisi": 0}


def test_mass_send_to_all_customers_of_a_sender(fake: FakeWeCom, client: WeComClient) -> None:
    for ext in ("wm1", "wm2"):
        fake.add_customer("zhangsan", ext, welcome=False)
    msgid = client.add_msg_template(sender="zhangsan", text="hi")["msgid"]
    assert statuses(client, msgid, "zhangsan") == {"wm1": 0, "wm2": 0}


@pytest.mark.parametrize(("cap", "step", "blocked_after"), [((1, "day"), DAY, 1), ((4, "month"), 0.0, 4)])
def test_per_customer_cap(clock: FakeClock, cap: tuple[int, str], step: float, blocked_after: int) -> None:
    with FakeWeCom(clock=clock, mass_send_cap=cap) as fake:
        client = WeComClient(fake.corp_id, fake.secret, base_url=fake.base_url, clock=clock)
        fake.add_customer("zhangsan", "wmA", welcome=False)
        seen = []
        for _ in range(blocked_after + 1):
            msgid = client.add_msg_template(external_userid=["wmA"], text="x")["msgid"]
            fake.confirm(msgid, "zhangsan")
            seen.append(statuses(client, msgid, "zhangsan")["wmA"])
        assert seen == [1] * blocked_after + [3]
        clock.advance(step or 31 * DAY)  # the next period starts
        msgid = client.add_msg_template(external_userid=["wmA"], text="x")["msgid"]
        fake.confirm(msgid, "zhangsan")
        assert statuses(client, msgid, "zhangsan")["wmA"] == 1
        client.close()


def test_default_cap_is_days_of_the_month(fake: FakeWeCom, clock: FakeClock) -> None:
    # 1_700_000_000 is 2023-11-15 in China: November has 30 days.
    assert fake.cap(clock()) == (30, "month")


def test_welcome_code_single_use(fake: FakeWeCom, client: WeComClient) -> None:
    code = fake.add_customer("zhangsan", "wmA", "Ann", state="ad7")
    assert code
    client.send_welcome_msg(code, "Welcome!")
    with pytest.raises(SkippableError, match="41051"):
        client.send_welcome_msg(code, "again")
    assert [m["text"] for m in fake.welcome_messages] == [{"content": "Welcome!"}]


def test_welcome_code_expires_after_20_seconds(
    fake: FakeWeCom, client: WeComClient, clock: FakeClock
) -> None:
    late = fake.add_customer("zhangsan", "wmA")
    early = fake.add_customer("zhangsan", "wmB")
    clock.advance(20)
    client.send_welcome_msg(early, "just in time")
    clock.advance(0.5)
    with pytest.raises(SkippableError):
        client.send_welcome_msg(late, "too late")
    with pytest.raises(SkippableError):
        client.send_welcome_msg("never-issued", "who?")


def test_moment_task(fake: FakeWeCom, client: WeComClient) -> None:
    jobid = client.add_moment_task("New arrivals", visible_range={"sender_list": {"user_list": ["zhangsan"]}})
    assert client.get_moment_task_result(jobid)["status"] == 1
    fake.confirm_moment(jobid)
    result = client.get_moment_task_result(jobid)
    assert result["status"] == 3 and result["result"]["moment_id"]


def test_contact_ways(fake: FakeWeCom, client: WeComClient) -> None:
    made = client.add_contact_way(type=1, scene=2, state="poster_a", user=["zhangsan"])
    config_id = made["config_id"]
    assert made["qr_code"]
    assert client.get_contact_way(config_id)["state"] == "poster_a"
    client.update_contact_way(config_id, remark="spring")
    assert client.get_contact_way(config_id)["remark"] == "spring"
    client.del_contact_way(config_id)
    assert config_id not in fake.contact_ways


def test_tags(fake: FakeWeCom, client: WeComClient) -> None:
    fake.add_customer("zhangsan", "wmA", welcome=False)
    group = client.add_corp_tag("Interest", ["cooking", "travel"])
    cooking, travel = (t["id"] for t in group["tag"])
    client.mark_tag("zhangsan", "wmA", add_tag=[cooking, travel])
    client.mark_tag("zhangsan", "wmA", remove_tag=[travel])
    assert fake.contacts["wmA"]["follow"]["zhangsan"]["tag_id"] == [cooking]
    [listed] = client.get_corp_tag_list()
    assert [t["name"] for t in listed["tag"]] == ["cooking", "travel"]
    client.del_corp_tag(tag_id=[travel])
    assert [t["name"] for t in client.get_corp_tag_list()[0]["tag"]] == ["cooking"]
    with pytest.raises(SkippableError, match="84061"):
        client.mark_tag("lisi", "wmA", add_tag=[cooking])


def test_groupchats(fake: FakeWeCom, client: WeComClient) -> None:
    fake.add_group("wrG1", "zhangsan", "VIP", ["zhangsan", "wmA"])
    fake.add_group("wrG2", "lisi", "Other")
    listed = client.groupchat_list(owner_userids=["zhangsan"])
    assert [g["chat_id"] for g in listed["group_chat_list"]] == ["wrG1"]
    # document 92122: join time and scene, who invited them; the name only with need_name
    assert client.groupchat_get("wrG1")["member_list"][1] == {
        "userid": "wmA",
        "type": 2,
        "join_time": int(fake.clock()),
        "join_scene": 1,
        "invitor": {"userid": "zhangsan"},
        "group_nickname": "",
    }
    assert client.groupchat_get("wrG1", need_name=True)["member_list"][1]["name"] == "wmA"


def test_every_request_is_recorded(fake: FakeWeCom, client: WeComClient) -> None:
    client.get_follow_user_list()
    assert [(r.method, r.path, r.errcode) for r in fake.requests] == [
        ("GET", "gettoken", 0),
        ("GET", "externalcontact/get_follow_user_list", 0),
    ]
    assert fake.requests[1].corp_id == fake.corp_id

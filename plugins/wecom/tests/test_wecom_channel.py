"""WeComChannel against the fake: pending mass sends, polling, welcome, notices."""

from __future__ import annotations

import pytest
from sopflow_sdk import (
    AmbiguousSendError,
    Attachment,
    ConfigError,
    FatalError,
    OutboundMessage,
    SkippableError,
    UnsupportedCapabilityError,
)
from sopflow_wecom.channel import WeComChannel, to_wecom_attachment
from sopflow_wecom.fake import FakeClock, FakeWeCom


@pytest.fixture
def channel(fake: FakeWeCom, clock: FakeClock) -> WeComChannel:
    config = {"corp_id": fake.corp_id, "agent_id": fake.agent_id, "base_url": fake.base_url}
    return WeComChannel(config, {"secret": fake.secret}, clock=clock)


def msg(touchpoint: str, **kwargs: object) -> OutboundMessage:
    return OutboundMessage(touchpoint=touchpoint, text="Hello", idempotency_key="touch-1", **kwargs)  # type: ignore[arg-type]


def test_private_chat_is_pending_until_confirmed(fake: FakeWeCom, channel: WeComChannel) -> None:
    fake.add_customer("zhangsan", "wmA", welcome=False)
    receipt = channel.send(
        msg("private_chat", recipient={"external_id": "wmA"}, staff_external_id="zhangsan")
    )
    assert receipt.status == "pending" and receipt.provider_ref
    assert channel.poll(receipt.provider_ref) == {"wmA": "pending"}
    fake.confirm(receipt.provider_ref, "zhangsan")
    assert channel.poll(receipt.provider_ref) == {"wmA": "sent"}


def test_welcome_staff_notice_and_moments(fake: FakeWeCom, channel: WeComChannel) -> None:
    code = fake.add_customer("zhangsan", "wmA")
    assert channel.send(msg("welcome", recipient={"welcome_code": code})).status == "sent"
    assert channel.send(msg("staff_notice", staff_external_id="zhangsan")).status == "sent"
    assert len(fake.app_messages["zhangsan"]) == 1
    moment = channel.send(msg("moments", attachments=(Attachment(kind="image", media_id="M1"),)))
    assert moment.status == "pending"
    jobid = moment.provider_ref.removeprefix("moment:")
    assert channel.poll(moment.provider_ref) == {jobid: "pending"}
    fake.confirm_moment(jobid)
    assert channel.poll(moment.provider_ref) == {jobid: "sent"}


def test_capabilities_are_enforced(channel: WeComChannel) -> None:
    too_many = tuple(Attachment(kind="image", media_id=str(i)) for i in range(10))
    with pytest.raises(UnsupportedCapabilityError):
        channel.send(msg("private_chat", recipient={"external_id": "wmA"}, attachments=too_many))


def test_attachment_shapes() -> None:
    link = to_wecom_attachment(Attachment(kind="link", url="https://x", title="T", description="D"))
    assert link == {"msgtype": "link", "link": {"title": "T", "url": "https://x", "desc": "D"}}
    assert to_wecom_attachment(Attachment(kind="video", media_id="V")) == {
        "msgtype": "video",
        "video": {"media_id": "V"},
    }


def test_missing_settings_are_reported_together() -> None:
    with pytest.raises(ConfigError) as info:
        WeComChannel({}, {})
    assert {f for f, _ in info.value.problems} == {"config.corp_id", "secrets.secret"}


def test_staff_notice_attachments_follow_as_app_messages(fake: FakeWeCom, channel: WeComChannel) -> None:
    """A stage reminder with attachments: the text, then each attachment as its own
    app message the member can forward with one tap."""
    fake.add_staff("zhangsan")
    message = OutboundMessage(
        touchpoint="staff_notice",
        text="请提醒王女士来复查",
        idempotency_key="touch:9:0",
        recipient={"staff_external_id": "zhangsan"},
        attachments=(
            Attachment(kind="link", url="https://clinic.example/checkup", title="复查预约"),
            Attachment(kind="image", media_id="MEDIA_1"),
            Attachment(kind="miniprogram", url="pages/book", title="预约小程序", media_id="PIC"),
        ),
    )
    assert channel.send(message).status == "sent"
    sent = [(m, t, c) for m, t, c in fake.app_message_bodies if m == "zhangsan"]
    assert [t for _, t, _ in sent] == ["text", "news", "image", "text"]
    assert sent[0][2]["content"] == "请提醒王女士来复查"
    assert sent[1][2]["articles"][0]["url"] == "https://clinic.example/checkup"
    assert sent[2][2] == {"media_id": "MEDIA_1"} and "pages/book" in sent[3][2]["content"]


# -- answers the fake gives since wechatpy checked it ------------------------------------------------


def test_staff_notice_to_a_member_the_app_cannot_reach_is_skipped(
    fake: FakeWeCom, channel: WeComChannel
) -> None:
    """message/send answers 81013 when no recipient is valid (document 90236): the
    member left or is outside the app's visible range; the touch is skipped."""
    with pytest.raises(SkippableError, match="81013"):
        channel.send(msg("staff_notice", recipient={"staff_userid": "gone"}))  # the older name still works
    assert fake.app_message_bodies == []


def test_staff_notice_needs_the_agent_id(fake: FakeWeCom, clock: FakeClock) -> None:
    fake.add_staff("zhangsan")
    channel = WeComChannel(
        {"corp_id": fake.corp_id, "base_url": fake.base_url}, {"secret": fake.secret}, clock=clock
    )
    with pytest.raises(FatalError, match=r"config\.agent_id"):
        channel.send(msg("staff_notice", staff_external_id="zhangsan"))
    assert fake.count("message/send") == 0


def test_lost_mass_send_answer_is_reconciled_from_the_task_list(
    fake: FakeWeCom, channel: WeComChannel
) -> None:
    """The task was made but its answer lost: get_groupmsg_list_v2 finds it, and the
    touch is followed as a pending send rather than left ambiguous (or sent twice)."""
    fake.add_customer("zhangsan", "wmA", welcome=False)
    fake.add_customer("zhangsan", "wmB", welcome=False)
    other = channel.send(msg("private_chat", recipient={"external_id": "wmB"}, staff_external_id="zhangsan"))
    fake.lose_answer("externalcontact/add_msg_template", acted=True)
    receipt = channel.send(
        msg("private_chat", recipient={"external_id": "wmA"}, staff_external_id="zhangsan")
    )
    assert receipt.status == "pending" and receipt.detail["reconciled"] is True
    assert receipt.provider_ref != other.provider_ref and len(fake.tasks) == 2
    assert fake.count("externalcontact/get_groupmsg_list_v2") == 1
    fake.confirm(receipt.provider_ref, "zhangsan")
    assert channel.poll(receipt.provider_ref) == {"wmA": "sent"}


def test_lost_mass_send_without_a_task_stays_ambiguous(fake: FakeWeCom, channel: WeComChannel) -> None:
    fake.add_customer("zhangsan", "wmA", welcome=False)
    fake.lose_answer("externalcontact/add_msg_template", acted=False)
    with pytest.raises(AmbiguousSendError, match="left for review"):
        channel.send(msg("private_chat", recipient={"external_id": "wmA"}, staff_external_id="zhangsan"))
    assert fake.tasks == {} and fake.count("externalcontact/add_msg_template") == 1


def test_lost_group_mass_send_is_reconciled(fake: FakeWeCom, channel: WeComChannel) -> None:
    fake.create_group("wrG1", "zhangsan", "VIP群", members=["zhangsan", "wmA"])
    fake.lose_answer("externalcontact/add_msg_template", acted=True)
    receipt = channel.send(msg("group_chat", recipient={"chat_id": "wrG1"}))
    assert receipt.status == "pending" and receipt.provider_ref in fake.tasks

"""Callback XML → normalized sopflow events."""

from __future__ import annotations

from typing import Any

import pytest
from sopflow_wecom.crypto import to_xml
from sopflow_wecom.events import EVENT_DESCRIPTIONS, parse_callback, trigger_specs


def contact_xml(change: str, **extra: Any) -> str:
    fields = {
        "ToUserName": "wwcorp",
        "FromUserName": "sys",
        "CreateTime": 1700000000,
        "MsgType": "event",
        "Event": "change_external_contact",
        "ChangeType": change,
        "UserID": "zhangsan",
        "ExternalUserID": "wmEXT01",
        **extra,
    }
    return to_xml(fields)


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ("add_external_contact", "customer.added"),
        ("add_half_external_contact", "customer.added_half"),
        ("edit_external_contact", "customer.edited"),
        ("del_external_contact", "customer.deleted_by_staff"),
        ("del_follow_user", "customer.churned"),
        ("transfer_fail", "customer.transfer_failed"),
    ],
)
def test_contact_events(change: str, expected: str) -> None:
    [event] = parse_callback(contact_xml(change))
    assert event.type == expected
    assert event.identity.channel == "wecom"
    assert event.identity.external_id == "wmEXT01"
    assert event.identity.staff_external_id == "zhangsan"
    assert event.occurred_at == "2023-11-14T22:13:20+00:00"
    assert event.idempotency_key.startswith("wecom:")


def test_add_contact_carries_state_welcome_code_and_source_field() -> None:
    [event] = parse_callback(contact_xml("add_external_contact", State="ad_campaign_7", WelcomeCode="WC123"))
    assert event.payload["state"] == "ad_campaign_7"
    assert event.payload["welcome_code"] == "WC123"
    assert event.payload["staff_userid"] == "zhangsan"
    assert event.source == "ad_campaign_7" and event.fields == {}


def test_add_contact_without_state_sets_no_field() -> None:
    [event] = parse_callback(contact_xml("add_external_contact"))
    assert event.fields == {}
    assert "state" not in event.payload


def test_del_and_transfer_extras() -> None:
    [deleted] = parse_callback(contact_xml("del_external_contact", Source="DELETE_BY_TRANSFER"))
    assert deleted.payload["source"] == "DELETE_BY_TRANSFER"
    [failed] = parse_callback(contact_xml("transfer_fail", FailReason="customer_refused"))
    assert failed.payload["fail_reason"] == "customer_refused"


def test_replayed_callback_has_the_same_key_and_others_differ() -> None:
    [a] = parse_callback(contact_xml("add_external_contact", State="s"))
    [b] = parse_callback(contact_xml("add_external_contact", State="s"))
    [c] = parse_callback(contact_xml("add_external_contact", State="s", CreateTime=1700000001))
    [d] = parse_callback(contact_xml("del_follow_user"))
    assert a.idempotency_key == b.idempotency_key
    assert len({a.idempotency_key, c.idempotency_key, d.idempotency_key}) == 3


def chat_xml(change: str, **extra: Any) -> str:
    return to_xml(
        {
            "ToUserName": "wwcorp",
            "FromUserName": "sys",
            "CreateTime": 1700000000,
            "MsgType": "event",
            "Event": "change_external_chat",
            "ChatId": "wrCHAT",
            "ChangeType": change,
            **extra,
        }
    )


@pytest.mark.parametrize(
    ("change", "detail", "expected"),
    [
        ("create", None, "group.created"),
        ("update", "change_name", "group.updated"),
        ("update", "add_member", "group.member_joined"),
        ("update", "del_member", "group.member_quit"),
        ("dismiss", None, "group.dismissed"),
    ],
)
def test_group_events(change: str, detail: str | None, expected: str) -> None:
    extra = {"UpdateDetail": detail} if detail else {}
    [event] = parse_callback(chat_xml(change, **extra))
    assert event.type == expected
    assert event.identity.external_id == "wrCHAT"
    assert event.payload["chat_id"] == "wrCHAT"


def test_group_member_list_is_kept() -> None:
    xml = chat_xml(
        "update", UpdateDetail="add_member", JoinScene=1, MemChangeCnt=2, MemChangeList=["wmA", "wmB"]
    )
    [event] = parse_callback(xml)
    assert event.payload["members"] == ["wmA", "wmB"]
    assert event.payload["join_scene"] == "1"


@pytest.mark.parametrize("change", ["create", "update", "delete", "shuffle"])
def test_tag_events(change: str) -> None:
    xml = to_xml(
        {
            "ToUserName": "wwcorp",
            "FromUserName": "sys",
            "CreateTime": 1700000000,
            "MsgType": "event",
            "Event": "change_external_tag",
            "Id": "etTAG",
            "TagType": "tag",
            "ChangeType": change,
        }
    )
    [event] = parse_callback(xml)
    assert event.type == "tag.changed"
    assert event.payload == {"change_type": change, "id": "etTAG", "tag_type": "tag", "corp_id": "wwcorp"}


def test_text_message(vectors: dict) -> None:
    [event] = parse_callback(vectors["decrypt_message"]["plaintext"])
    assert event.type == "message.received"
    assert event.payload["text"] == "你好"
    assert event.identity.external_id == "ChenJiaShun"


@pytest.mark.parametrize(
    "xml",
    [
        contact_xml("some_future_change"),
        to_xml({"MsgType": "event", "Event": "enter_agent", "FromUserName": "u"}),
        to_xml({"MsgType": "image", "FromUserName": "u", "PicUrl": "x"}),
        contact_xml("add_external_contact", ExternalUserID=""),
    ],
)
def test_unknown_or_incomplete_callbacks_map_to_nothing(xml: str) -> None:
    assert parse_callback(xml) == []


def test_every_event_type_is_declared_as_trigger() -> None:
    from sopflow_sdk import STANDARD_EVENTS

    declared = {spec.event_type for spec in trigger_specs()}
    # every type the plugin emits is either core's standard vocabulary or declared by the plugin
    assert declared | set(STANDARD_EVENTS) >= set(EVENT_DESCRIPTIONS)
    assert not declared & set(STANDARD_EVENTS)
    assert {"group.member_joined", "tag.changed", "customer.added_half"} <= declared

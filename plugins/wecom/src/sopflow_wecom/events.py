"""Turn decrypted WeCom callbacks into normalized sopflow events.

WeCom names things by ``Event`` + ``ChangeType``; SOPs trigger on stable,
channel-neutral types such as ``customer.added``.  This module is the one place
that knows the mapping, so the callback route stays a thin verify-and-ingest
function.  The idempotency key is derived from the message itself: WeCom retries
a callback up to three times and a replay must become a duplicate, not a second
enrolment.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from sopflow_sdk import STANDARD_EVENTS, Identity, IngestEvent, TriggerSpec

from sopflow_wecom.crypto import parse_xml

CHANNEL = "wecom"
#: Identity channel for customer-group events (the "customer" is the chat).
GROUP_CHANNEL = "wecom_group"
#: The source of a customer-group "customer", so SOPs can target groups
#: (``"target": {"sources": ["wecom_group"]}``); a source is set once.
GROUP_SOURCE = "wecom_group"
#: Identity channel for corp-wide events such as tag library changes.
CORP_CHANNEL = "wecom_corp"

CONTACT_TYPES: Mapping[str, str] = {
    "add_external_contact": "customer.added",
    "add_half_external_contact": "customer.added_half",
    "edit_external_contact": "customer.edited",
    "del_external_contact": "customer.deleted_by_staff",
    "del_follow_user": "customer.churned",
    "transfer_fail": "customer.transfer_failed",
    "msg_audit_approved": "customer.archive_approved",
}
GROUP_TYPES: Mapping[str, str] = {
    "create": "group.created",
    "update": "group.updated",
    "dismiss": "group.dismissed",
}
GROUP_MEMBER_TYPES: Mapping[str, str] = {
    "add_member": "group.member_joined",
    "del_member": "group.member_quit",
}
TAG_TYPE = "tag.changed"
MESSAGE_TYPE = "message.received"

EVENT_DESCRIPTIONS: Mapping[str, str] = {
    "customer.added": "A customer added a staff member (WelcomeCode valid for 20 s)",
    "customer.added_half": "A customer added a staff member who has not accepted yet",
    "customer.edited": "A staff member edited a customer's remark or tags",
    "customer.deleted_by_staff": "A staff member deleted a customer",
    "customer.churned": "A customer deleted the staff member",
    "customer.transfer_failed": "Handing a customer over to another staff member failed",
    "customer.archive_approved": "A customer agreed that their chats with a member are archived (会话存档)",
    "group.created": "A customer group was created",
    "group.updated": "A customer group changed (name, owner, notice, ...)",
    "group.member_joined": "Members joined a customer group",
    "group.member_quit": "Members left a customer group",
    "group.dismissed": "A customer group was dismissed",
    "tag.changed": "The corp tag library changed",
    "message.received": "A text message was sent to the app",
    "customer.imported": "An existing customer of a member was imported (initial import; nothing is sent)",
    "moment.liked": "A customer liked a moment (客户朋友圈) a member published (payload moment_id)",
    "moment.commented": "A customer commented on a moment a member published (payload moment_id)",
}


def trigger_specs() -> list[TriggerSpec]:
    """The event types this plugin emits, for ``register_triggers``."""
    # Standard event types belong to core's vocabulary; register only our own.
    return [
        TriggerSpec(event_type=t, description=d, payload_schema={"type": "object"})
        for t, d in EVENT_DESCRIPTIONS.items()
        if t not in STANDARD_EVENTS
    ]


def _s(msg: Mapping[str, Any], key: str) -> str:
    value = msg.get(key, "")
    return value if isinstance(value, str) else ""


#: The fields that tell one callback event from another.  WeCom documents
#: ``FromUserName + CreateTime`` for events; a change event's ``FromUserName`` is
#: ``sys`` and two customers added in one second share a ``CreateTime``, so the
#: event's own subjects are part of its key too.
_EVENT_KEY = (
    "ToUserName",
    "FromUserName",
    "CreateTime",
    "MsgType",
    "Event",
    "ChangeType",
    "UserID",
    "ExternalUserID",
    "ChatId",
    "UpdateDetail",
    "Id",
    "TagType",
)
#: A message is keyed by its ``MsgId`` alone (within the corp and app), as WeCom
#: documents: a retry may carry another ``CreateTime``.
_MESSAGE_KEY = ("ToUserName", "AgentID", "MsgId")


def idempotency_key(msg: Mapping[str, Any]) -> str:
    """``wecom:`` + sha256 of the fields that identify one callback: the
    ``MsgId`` of a message, the documented key (and subjects) of an event."""
    keys = _MESSAGE_KEY if _s(msg, "MsgId") else _EVENT_KEY
    material = "\x1f".join(f"{k}={_s(msg, k)}" for k in keys)
    return "wecom:" + hashlib.sha256(material.encode("utf-8")).hexdigest()


def _occurred_at(msg: Mapping[str, Any]) -> str | None:
    created = _s(msg, "CreateTime")
    if not created.isdigit():
        return None
    return datetime.fromtimestamp(int(created), tz=UTC).isoformat()


def _event(
    type_: str,
    identity: Identity,
    msg: Mapping[str, Any],
    payload: dict[str, Any],
    source: str | None = None,
) -> IngestEvent:
    payload = {k: v for k, v in payload.items() if v not in ("", None, [])}
    payload["corp_id"] = _s(msg, "ToUserName")
    return IngestEvent(
        type=type_,
        identity=identity,
        idempotency_key=idempotency_key(msg),
        occurred_at=_occurred_at(msg),
        payload=payload,
        source=source or None,
    )


def _contact_event(msg: Mapping[str, Any]) -> IngestEvent | None:
    change = _s(msg, "ChangeType")
    type_ = CONTACT_TYPES.get(change)
    external_id = _s(msg, "ExternalUserID")
    if type_ is None or not external_id:
        return None
    staff = _s(msg, "UserID") or None
    identity = Identity(channel=CHANNEL, external_id=external_id, staff_external_id=staff)
    state = _s(msg, "State")
    payload = {
        "change_type": change,
        "staff_userid": staff,
        "state": state,
        "welcome_code": _s(msg, "WelcomeCode"),
        "source": _s(msg, "Source"),
        "fail_reason": _s(msg, "FailReason"),
    }
    # The live QR code's state becomes the customer's acquisition source.
    source = state if change in ("add_external_contact", "add_half_external_contact") else None
    return _event(type_, identity, msg, payload, source)


def _chat_event(msg: Mapping[str, Any]) -> IngestEvent | None:
    chat_id = _s(msg, "ChatId")
    change = _s(msg, "ChangeType")
    detail = _s(msg, "UpdateDetail")
    type_ = GROUP_TYPES.get(change)
    if change == "update" and detail in GROUP_MEMBER_TYPES:
        type_ = GROUP_MEMBER_TYPES[detail]
    if type_ is None or not chat_id:
        return None
    members = msg.get("MemChangeList")
    payload = {
        "chat_id": chat_id,
        "change_type": change,
        "update_detail": detail,
        "join_scene": _s(msg, "JoinScene"),
        "quit_scene": _s(msg, "QuitScene"),
        "member_change_count": _s(msg, "MemChangeCnt"),
        "members": list(members) if isinstance(members, list) else [],
    }
    identity = Identity(channel=GROUP_CHANNEL, external_id=chat_id)
    return _event(type_, identity, msg, payload, GROUP_SOURCE)


def _tag_event(msg: Mapping[str, Any]) -> IngestEvent | None:
    change = _s(msg, "ChangeType")
    if change not in ("create", "update", "delete", "shuffle"):
        return None
    corp = _s(msg, "ToUserName")
    payload = {
        "change_type": change,
        "id": _s(msg, "Id"),
        "tag_type": _s(msg, "TagType"),
        "strategy_id": _s(msg, "StrategyId"),
    }
    return _event(TAG_TYPE, Identity(channel=CORP_CHANNEL, external_id=corp), msg, payload)


def _text_message(msg: Mapping[str, Any]) -> IngestEvent | None:
    sender = _s(msg, "ExternalUserID") or _s(msg, "FromUserName")
    if not sender:
        return None
    staff = _s(msg, "UserID") or None
    payload = {
        "text": _s(msg, "Content"),
        "msg_id": _s(msg, "MsgId"),
        "agent_id": _s(msg, "AgentID"),
        "from": _s(msg, "FromUserName"),
    }
    identity = Identity(channel=CHANNEL, external_id=sender, staff_external_id=staff)
    return _event(MESSAGE_TYPE, identity, msg, payload)


def to_ingest_events(msg: Mapping[str, Any]) -> list[IngestEvent]:
    """Map one decrypted callback (as a dict) to zero or one normalized events.

    Unknown events map to ``[]``: WeCom adds event kinds over time and an
    unrecognised one must be acknowledged, not failed.
    """
    msg_type = _s(msg, "MsgType")
    event = _s(msg, "Event")
    result: IngestEvent | None = None
    if msg_type == "event" and event == "change_external_contact":
        result = _contact_event(msg)
    elif msg_type == "event" and event == "change_external_chat":
        result = _chat_event(msg)
    elif msg_type == "event" and event == "change_external_tag":
        result = _tag_event(msg)
    elif msg_type == "text":
        result = _text_message(msg)
    return [result] if result is not None else []


def parse_callback(xml_text: bytes | str) -> list[IngestEvent]:
    """Parse decrypted callback XML and map it to normalized events."""
    return to_ingest_events(parse_xml(xml_text))

"""What becomes what: one decrypted archive message → a sopflow event, or nothing.

Pure functions over the JSON ``DecryptData`` returns; no I/O.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any, Protocol

import attrs
from sopflow_sdk import FieldSpec, Identity, IngestEvent, TriggerSpec

from sopflow_wecom.events import CHANNEL, MESSAGE_TYPE

#: ``GetChatData`` returns at most this many messages per call.
MAX_LIMIT = 1000
#: External contacts' ids start so (``wm``: WeChat users, ``wo``: other external ids).
EXTERNAL_PREFIXES = ("wm", "wo")
#: Bots (``wb``) are neither staff nor customers.
BOT_PREFIX = "wb"


@attrs.frozen
class ArchivedMessage:
    """One decrypted archive message: its ``seq`` in the archive and the JSON
    ``DecryptData`` returned (``msgid``, ``action``, ``from``, ``tolist``,
    ``roomid``, ``msgtime`` in ms, ``msgtype``, and a body keyed by the type,
    e.g. ``text.content``)."""

    seq: int
    record: Mapping[str, Any]
    #: why this message could not be decrypted (recorded and passed over), else None
    skipped: str | None = None

    @property
    def msgid(self) -> str:
        return str(self.record.get("msgid", ""))


class ArchiveSource(Protocol):
    """The adapter point for WeCom's native Finance SDK.

    ``fetch(seq, limit)`` returns up to ``limit`` (1..1000) messages with a seq
    greater than ``seq``, oldest first, each decrypted: for every ``chatdata``
    item of ``GetChatData(sdk, seq, limit, proxy, passwd, timeout)``, RSA-decrypt
    ``encrypt_random_key`` with the private key of ``publickey_ver``, then
    ``DecryptData(key, encrypt_chat_msg)`` and parse the JSON.  Raise
    ``RetriableError`` for timeouts and ``FatalError`` for a wrong secret, key or
    IP whitelist (``301042``).
    """

    def fetch(self, seq: int, limit: int) -> list[ArchivedMessage]: ...


def is_external(userid: str) -> bool:
    return userid.startswith(EXTERNAL_PREFIXES)


def is_staff(userid: Any) -> bool:
    not_staff = (*EXTERNAL_PREFIXES, BOT_PREFIX)
    return isinstance(userid, str) and bool(userid) and not userid.startswith(not_staff)


def staff_of(tolist: Any) -> str | None:
    """The staff member a private chat is with: the first staff userid in ``tolist``."""
    return next((u for u in tolist if is_staff(u)), None) if isinstance(tolist, list) else None


def _occurred_at(msgtime: Any) -> str | None:
    if isinstance(msgtime, bool) or not isinstance(msgtime, int | float) or msgtime <= 0:
        return None
    return datetime.fromtimestamp(msgtime / 1000, tz=UTC).isoformat()


#: Message types whose body is a file in WeCom's media store (``sdkfileid``).
MEDIA_TYPES = frozenset({"image", "voice", "video", "file", "emotion"})
#: The metadata of a media body kept in the event (never the content itself).
MEDIA_FIELDS = ("md5sum", "filesize", "filename", "fileext", "width", "height", "play_length", "voice_size")
STAFF_MESSAGE_TYPE = "message.staff_sent"
REVOKE_TYPE = "message.revoked"
#: The customer field a staff member's archived message sets: their last contact.
LAST_CONTACT_FIELD = "wecom.last_contact_at"


def _customer(record: Mapping[str, Any]) -> tuple[str, str | None, bool] | None:
    """(customer, staff, customer_sent) of a record, or None when no customer is in it."""
    sender = str(record.get("from") or "")
    tolist = record.get("tolist") if isinstance(record.get("tolist"), list) else []
    if is_external(sender):
        return sender, None if record.get("roomid") else staff_of(tolist), True
    if is_staff(sender) and not record.get("roomid"):
        customer = next((str(u) for u in tolist if isinstance(u, str) and is_external(u)), None)
        return (customer, sender, False) if customer else None
    return None


def _media(record: Mapping[str, Any], msgtype: str) -> dict[str, Any]:
    body = record.get(msgtype)
    body = body if isinstance(body, Mapping) else {}
    meta = {k: body[k] for k in MEDIA_FIELDS if k in body}
    stored = record.get("_sopflow_media")  # set by the source when the setting asks for the content
    if isinstance(stored, Mapping):
        meta["stored"] = dict(stored)
    return {"type": msgtype, **meta}


def to_ingest_event(message: ArchivedMessage, corp_id: str = "") -> IngestEvent | None:
    """The event one archived message becomes, or ``None``:

    - a customer's text or media in a private chat → ``message.received`` (with the
      staff member); in a group chat → ``message.received`` with ``room_id``;
    - a staff member's message to a customer in a private chat →
      ``message.staff_sent``, which sets ``wecom.last_contact_at``;
    - a recall (``revoke``) in a private chat → ``message.revoked`` naming ``pre_msgid``;
    - consent (``agree``/``disagree``), ``switch`` markers, bots, staff-only chats,
      staff messages in groups and undecryptable messages → ``None`` (consent is
      handled by the pull, ``consent.py``).
    """
    record = message.record
    if message.skipped is not None or not message.msgid or record.get("action") not in ("send", "recall"):
        return None
    msgtype = str(record.get("msgtype") or "")
    who = _customer(record)
    if who is None:
        return None
    customer, staff, customer_sent = who
    room = str(record.get("roomid") or "")
    payload: dict[str, Any] = {
        "msg_id": message.msgid,
        "from": str(record.get("from")),
        "staff_userid": staff,
        "room_id": room,
        "corp_id": corp_id,
        "via": "conversation_archive",
    }
    fields: dict[str, Any] = {}
    if msgtype == "revoke":
        body = record.get("revoke")
        if room or not isinstance(body, Mapping) or not body.get("pre_msgid"):
            return None
        event_type, payload["pre_msgid"] = REVOKE_TYPE, str(body["pre_msgid"])
    elif msgtype == "text" or msgtype in MEDIA_TYPES:
        body = record.get("text")
        text = "" if msgtype != "text" else body.get("content") if isinstance(body, Mapping) else None
        if not isinstance(text, str):
            return None
        payload["text"] = text
        if msgtype != "text":
            payload["media"] = _media(record, msgtype)
        if customer_sent:
            event_type = MESSAGE_TYPE
        else:
            event_type = STAFF_MESSAGE_TYPE
            when = _occurred_at(record.get("msgtime"))
            if when:
                fields[LAST_CONTACT_FIELD] = when
    else:
        return None
    return IngestEvent(
        type=event_type,
        identity=Identity(channel=CHANNEL, external_id=customer, staff_external_id=staff),
        idempotency_key=f"wecom:archive:{corp_id}:{message.msgid}",
        occurred_at=_occurred_at(record.get("msgtime")),
        payload={k: v for k, v in payload.items() if v not in (None, "") or k == "text"},
        fields=fields,
    )


def to_ingest_events(messages: Iterable[ArchivedMessage], corp_id: str = "") -> list[IngestEvent]:
    """The events in ``messages``, in archive order."""
    return [e for m in messages if (e := to_ingest_event(m, corp_id)) is not None]


def field_specs() -> list[FieldSpec]:
    """The customer fields the archive sets (hook ``register_fields``)."""
    return [
        FieldSpec(
            key=LAST_CONTACT_FIELD,
            type="datetime",
            label="Last staff message (WeCom)",
            description="when a staff member last wrote to the customer, from the conversation archive",
        )
    ]


def trigger_specs() -> list[TriggerSpec]:
    """The event types the archive adds to the plugin's (hook ``register_triggers``)."""
    return [
        TriggerSpec(
            event_type=STAFF_MESSAGE_TYPE,
            description="A staff member wrote to the customer (conversation archive)",
            payload_schema={"type": "object"},
        ),
        TriggerSpec(
            event_type=REVOKE_TYPE,
            description="A message in the customer's private chat was recalled; payload.pre_msgid names it",
            payload_schema={"type": "object"},
        ),
    ]

"""What becomes what: one decrypted archive message → a sopflow event, or nothing.

Pure functions over the JSON ``DecryptData`` returns; no I/O.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any, Protocol

import attrs
from sopflow_sdk import Identity, IngestEvent

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


def _staff(tolist: Any) -> str | None:
    """The staff member a private chat is with: the first staff userid in ``tolist``."""
    return next((u for u in tolist if is_staff(u)), None) if isinstance(tolist, list) else None


def _occurred_at(msgtime: Any) -> str | None:
    if isinstance(msgtime, bool) or not isinstance(msgtime, int | float) or msgtime <= 0:
        return None
    return datetime.fromtimestamp(msgtime / 1000, tz=UTC).isoformat()


def to_ingest_event(message: ArchivedMessage, corp_id: str = "") -> IngestEvent | None:
    """``message.received`` for a text a customer sent in a private chat, else ``None``.

    Group messages (``roomid`` set) are left out: no single staff member owns
    the conversation, so the customer identity (external id + staff) is unknown.
    """
    record = message.record
    if message.skipped is not None:
        return None
    sender = str(record.get("from") or "")
    body = record.get("text")
    text = body.get("content") if isinstance(body, Mapping) else None
    if (
        record.get("action") != "send"
        or record.get("msgtype") != "text"
        or record.get("roomid")
        or not is_external(sender)
        or not message.msgid
        or not isinstance(text, str)
    ):
        return None
    staff = _staff(record.get("tolist"))
    payload = {
        "text": text,
        "msg_id": message.msgid,
        "from": sender,
        "staff_userid": staff,
        "corp_id": corp_id,
        "via": "conversation_archive",
    }
    return IngestEvent(
        type=MESSAGE_TYPE,
        identity=Identity(channel=CHANNEL, external_id=sender, staff_external_id=staff),
        idempotency_key=f"wecom:archive:{corp_id}:{message.msgid}",
        occurred_at=_occurred_at(record.get("msgtime")),
        payload={k: v for k, v in payload.items() if v not in (None, "")},
    )


def to_ingest_events(messages: Iterable[ArchivedMessage], corp_id: str = "") -> list[IngestEvent]:
    """The ``message.received`` events in ``messages``, in archive order."""
    return [e for m in messages if (e := to_ingest_event(m, corp_id)) is not None]

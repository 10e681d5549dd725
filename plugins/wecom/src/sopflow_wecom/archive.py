"""Conversation archive (会话内容存档): customers' chat messages as sopflow events.

WeCom hands out archived chats only through its native Finance SDK
(``GetChatData`` + RSA-decrypting each message's key + ``DecryptData``), which is
not a Python package.  This module is everything around it:

- ``ArchiveSource`` — the adapter point.  A deployment wraps the native SDK in
  an object with ``fetch(seq, limit)`` returning the decrypted records.
- ``to_ingest_events`` — pure: a text message a customer sent to one staff
  member in a private chat becomes a ``message.received`` event; everything
  else (staff messages, group chats, images, recalls, ``switch`` markers) does not.
- ``pull_archive`` — one pull for one WeCom channel account: fetch after the
  stored cursor, ingest, store the new cursor.

The cursor is kept in the calling plugin's state (``host.state``) under
``archive.seq.<account id>``, written in the same transaction as each batch's
events: it never runs ahead of events that were not stored, nor stays behind
events that were.  The idempotency key is the archive's ``msgid``, so a cursor
rewound on purpose (``seq=0``) costs a re-read, never a second event.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Protocol

import attrs
from sopflow_sdk import Host, Identity, IngestEvent

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


@attrs.frozen
class ArchivePull:
    """What one ``pull_archive`` did; ``seq`` is the cursor it stored."""

    seq: int
    fetched: int = 0
    created: int = 0
    duplicates: int = 0


def cursor_key(account_id: int) -> str:
    """The state key of an account's archive cursor."""
    return f"archive.seq.{account_id}"


def stored_seq(host: Host, tenant_id: int, account_id: int, corp_id: str) -> int:
    """The account's stored cursor (0 before the first pull, or when the account now
    points at another corp)."""
    saved = host.state(tenant_id).get(cursor_key(account_id))
    if isinstance(saved, dict) and saved.get("corp_id") == corp_id and isinstance(saved.get("seq"), int):
        return int(saved["seq"])
    return 0


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


def pull_archive(
    host: Host,
    account_id: int,
    source: ArchiveSource,
    *,
    seq: int | None = None,
    limit: int = MAX_LIMIT,
    max_batches: int = 10,
) -> ArchivePull:
    """Fetch the archive for WeCom channel account ``account_id`` and ingest its
    customers' messages, at most ``max_batches`` fetches of ``limit``.

    Starts after the stored cursor (``stored_seq``), or after ``seq`` when given
    (``seq=0`` re-reads from the start).  Each batch's events and the cursor past
    them commit together.  Returns the stored cursor (``seq`` unchanged, nothing
    stored, when ``host.channel_account`` does not show the account, e.g. its
    tenant switched the calling plugin off, or it is not a WeCom one).
    """
    if not 1 <= limit <= MAX_LIMIT:
        raise ValueError(f"limit={limit}: GetChatData takes 1..{MAX_LIMIT}")
    account = host.channel_account(account_id)
    if account is None or account.channel != CHANNEL:
        return ArchivePull(seq=seq or 0)
    corp_id = str(account.config.get("corp_id") or "")
    if seq is None:
        seq = stored_seq(host, account.tenant_id, account.id, corp_id)
    fetched = created = duplicates = 0
    for _ in range(max_batches):
        batch: Sequence[ArchivedMessage] = source.fetch(seq, limit)
        if not batch:
            break
        events = to_ingest_events(batch, corp_id)
        seq = max(seq, *(m.seq for m in batch))
        with host.transaction(account.tenant_id) as tx:
            outcomes = tx.ingest(events) if events else []
            tx.state.set(cursor_key(account.id), {"corp_id": corp_id, "seq": seq})
        created += sum(1 for o in outcomes if o.get("status") == "created")
        duplicates += sum(1 for o in outcomes if o.get("status") == "duplicate")
        fetched += len(batch)
        if len(batch) < limit:
            break
    return ArchivePull(seq=seq, fetched=fetched, created=created, duplicates=duplicates)

"""One archive pull for one WeCom channel account: fetch after the stored cursor,
turn the messages into events (``mapping``, filtered by ``consent``), ingest them.

The cursor is kept in the calling plugin's state (``host.state``) under
``archive.seq.<account id>``, written in the same transaction as each batch's
events, the batch's skipped messages and its consent answers: it never runs ahead
of events that were not stored, nor stays behind events that were.  The
idempotency key is the archive's ``msgid``, so a cursor rewound on purpose
(``seq=0``) or a pull killed mid-way costs a re-read, never a second event.
"""

from __future__ import annotations

from collections.abc import Sequence

import attrs
from sopflow_sdk import Host

from sopflow_wecom.archive.consent import ConsentBook
from sopflow_wecom.archive.mapping import MAX_LIMIT, ArchivedMessage, ArchiveSource, to_ingest_event
from sopflow_wecom.events import CHANNEL


@attrs.frozen
class ArchivePull:
    """What one ``pull_archive`` did; ``seq`` is the cursor it stored."""

    seq: int
    fetched: int = 0
    created: int = 0
    duplicates: int = 0
    #: messages that could not be decrypted: recorded (``skipped_key``) and passed over
    skipped: int = 0


def cursor_key(account_id: int) -> str:
    """The state key of an account's archive cursor."""
    return f"archive.seq.{account_id}"


def skipped_key(account_id: int) -> str:
    """The state key of the account's skipped messages (the last ``KEEP_SKIPPED``)."""
    return f"archive.skipped.{account_id}"


#: How many skipped messages an account keeps on record (newest last).
KEEP_SKIPPED = 200


def stored_seq(host: Host, tenant_id: int, account_id: int, corp_id: str) -> int:
    """The account's stored cursor (0 before the first pull, or when the account now
    points at another corp)."""
    saved = host.state(tenant_id).get(cursor_key(account_id))
    if isinstance(saved, dict) and saved.get("corp_id") == corp_id and isinstance(saved.get("seq"), int):
        return int(saved["seq"])
    return 0


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
    require_consent = bool(account.config.get("archive_require_consent"))
    if seq is None:
        seq = stored_seq(host, account.tenant_id, account.id, corp_id)
    fetched = created = duplicates = skipped = 0
    for _ in range(max_batches):
        batch: Sequence[ArchivedMessage] = source.fetch(seq, limit)
        if not batch:
            break
        seq = max(seq, *(m.seq for m in batch))
        passed_over = [
            {"seq": m.seq, "msgid": m.msgid, "reason": m.skipped} for m in batch if m.skipped is not None
        ]
        with host.transaction(account.tenant_id) as tx:
            consent = ConsentBook(tx.state, account.id, require=require_consent)
            events = []
            for message in batch:
                if consent.observe(message):
                    continue
                event = to_ingest_event(message, corp_id)
                if event is not None and consent.allows(event):
                    events.append(event)
            outcomes = tx.ingest(events) if events else []
            consent.save()
            if passed_over:
                kept = tx.state.get(skipped_key(account.id), [], lock=True) or []
                tx.state.set(skipped_key(account.id), [*kept, *passed_over][-KEEP_SKIPPED:])
            tx.state.set(cursor_key(account.id), {"corp_id": corp_id, "seq": seq})
        skipped += len(passed_over)
        created += sum(1 for o in outcomes if o.get("status") == "created")
        duplicates += sum(1 for o in outcomes if o.get("status") == "duplicate")
        fetched += len(batch)
        if len(batch) < limit:
            break
    return ArchivePull(seq=seq, fetched=fetched, created=created, duplicates=duplicates, skipped=skipped)

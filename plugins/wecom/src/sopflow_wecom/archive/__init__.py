"""Conversation archive (会话内容存档): customers' chats pulled through WeCom's own
Finance SDK, decrypted with the corp's RSA keys, ingested as sopflow events.

- ``native`` — the ctypes binding of ``libWeWorkFinanceSdk_C``;
- ``errors`` — its return codes mapped to sopflow's error tree;
- ``keys`` — the RSA private keys by ``publickey_ver``;
- ``source`` — ``GetChatData`` → decrypt → ``ArchivedMessage``;
- ``mapping`` — what each archived message becomes;
- ``consent`` — customers' agree/disagree answers, kept in plugin state;
- ``media`` — media content, fetched only when the account asks;
- ``pull`` — one pull for one account, the cursor in plugin state;
- ``job`` — the periodic pull job and an account's health;
- ``alert`` — telling staff that an account's archive stopped;
- ``settings``, ``routes``, ``commands`` — the account settings, the admin routes,
  ``sopflow wecom archive-pull``.
"""

from sopflow_wecom.archive.mapping import (
    MAX_LIMIT,
    ArchivedMessage,
    ArchiveSource,
    is_external,
    is_staff,
    to_ingest_event,
    to_ingest_events,
)
from sopflow_wecom.archive.pull import ArchivePull, cursor_key, pull_archive, skipped_key, stored_seq

__all__ = [
    "MAX_LIMIT",
    "ArchivePull",
    "ArchiveSource",
    "ArchivedMessage",
    "cursor_key",
    "is_external",
    "is_staff",
    "pull_archive",
    "skipped_key",
    "stored_seq",
    "to_ingest_event",
    "to_ingest_events",
]

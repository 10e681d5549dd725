"""The archive as WeCom's library serves it: ``GetChatData`` after a ``seq``, each
message's random key opened with the corp's RSA key, then ``DecryptData``.

``FinanceArchiveSource`` is the ``ArchiveSource`` production uses.  A message that
cannot be decrypted comes back with ``skipped`` set (recorded, passed over);
errors that concern the whole pull are raised from sopflow's error tree.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from sopflow_sdk import FatalError, RetriableError, SkippableError, SopflowError

from sopflow_wecom.archive import media
from sopflow_wecom.archive.errors import FinanceSdkError, kind_of, to_sopflow_error
from sopflow_wecom.archive.keys import ArchiveKeys
from sopflow_wecom.archive.mapping import MEDIA_TYPES, ArchivedMessage
from sopflow_wecom.archive.native import FinanceSdk


class FinanceArchiveSource:
    """``fetch(seq, limit)`` over one ``FinanceSdk`` handle and the corp's keys."""

    def __init__(
        self,
        sdk: FinanceSdk,
        keys: ArchiveKeys,
        subject: str = "",
        *,
        media_root: Path | None = None,
        corp_id: str = "",
    ) -> None:
        self.sdk, self.keys, self.subject = sdk, keys, subject
        #: where media content goes; None keeps the metadata only
        self.media_root, self.corp_id = media_root, corp_id

    def fetch(self, seq: int, limit: int) -> list[ArchivedMessage]:
        try:
            raw = self.sdk.get_chat_data(seq, limit)
        except FinanceSdkError as exc:
            raise self._page_error(exc.code) from None
        try:
            answer: Any = json.loads(raw or b"{}")
        except ValueError:
            raise self._page_error(10002) from None
        errcode = answer.get("errcode", 0) if isinstance(answer, dict) else 10002
        if errcode:
            raise self._page_error(int(errcode))
        items = answer.get("chatdata") or []
        return [self._open(item) for item in items if isinstance(item, dict)]

    def _page_error(self, code: int) -> SopflowError:
        """A page that fails as a whole has no one message to pass over: a code
        that would skip one message is retried with the page, the cursor kept."""
        error = to_sopflow_error(code, "GetChatData", self.subject)
        if isinstance(error, SkippableError):
            error = RetriableError(f"{error}; a whole page failed, so the next pull retries it")
            error.code = code  # type: ignore[attr-defined]
        return error

    def _open(self, item: dict[str, Any]) -> ArchivedMessage:
        seq, msgid = int(item.get("seq") or 0), str(item.get("msgid") or "")
        version = int(item.get("publickey_ver") or 0)
        if not self.keys.has(version):
            # Skipping would pass over every message of this version for good: stop instead.
            raise FatalError(
                f"{self.subject}: message seq {seq} is encrypted for publickey_ver {version}, which "
                f"secrets.archive_private_keys lacks (has {self.keys.versions}); add that private key"
            )
        try:
            key = self.keys.decrypt_random_key(version, str(item.get("encrypt_random_key") or ""))
            plain = self.sdk.decrypt_data(key, str(item.get("encrypt_chat_msg") or ""))
            record = json.loads(plain)
            if not isinstance(record, dict):
                raise ValueError("not a JSON object")
        except SkippableError as exc:
            return ArchivedMessage(seq=seq, record={"msgid": msgid}, skipped=exc.user_message)
        except FinanceSdkError as exc:
            if kind_of(exc.code) != "skippable":
                raise to_sopflow_error(exc.code, exc.call, self.subject) from None
            return ArchivedMessage(seq=seq, record={"msgid": msgid}, skipped=str(exc))
        except ValueError as exc:
            return ArchivedMessage(seq=seq, record={"msgid": msgid}, skipped=f"plaintext is not JSON: {exc}")
        msgtype = str(record.get("msgtype") or "")
        body = record.get(msgtype)
        if self.media_root is not None and msgtype in MEDIA_TYPES and isinstance(body, dict):
            record["_sopflow_media"] = media.fetch(self.sdk, self.media_root, self.corp_id, msgid, body)
        return ArchivedMessage(seq=seq, record=record)

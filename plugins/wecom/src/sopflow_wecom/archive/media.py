"""Media content of archived messages (images, voice, video, files), fetched only when
the account's ``archive_fetch_media`` asks: ``GetMediaData`` page by page (``indexbuf``)
into ``SOPFLOW_WECOM_ARCHIVE_MEDIA_DIR``/<corp id>/<msgid>.  Without the setting
the events carry the metadata only (type, md5sum, size, name).

A file is written under a temporary name and renamed when complete, and named by the
message's ``msgid``: a pull re-read after a crash writes the same file again,
never a second one.
"""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path
from typing import Any

from sopflow_sdk import ConfigError

from sopflow_wecom.archive.errors import FinanceSdkError, kind_of, to_sopflow_error
from sopflow_wecom.archive.native import FinanceSdk

MEDIA_DIR_ENV = "SOPFLOW_WECOM_ARCHIVE_MEDIA_DIR"
#: GetMediaData answers 512 KiB a call: 4,096 pages is 2 GiB, past WeCom's largest file.
MAX_PAGES = 4096
_UNSAFE = re.compile(r"[^A-Za-z0-9._=-]")


def media_dir() -> Path:
    """Where media files go, or a ``ConfigError`` naming the setting."""
    configured = os.environ.get(MEDIA_DIR_ENV, "").strip()
    if not configured:
        raise ConfigError(
            [(MEDIA_DIR_ENV, "set it to a writable directory, or turn config.archive_fetch_media off")],
            subject="WeCom archive media",
        )
    return Path(configured)


def fetch(sdk: FinanceSdk, root: Path, corp_id: str, msgid: str, body: dict[str, Any]) -> dict[str, Any]:
    """Download one message's media; what to record in its event (``path``, ``size``,
    ``md5_ok``, or ``error`` when WeCom cannot serve it).  Retriable codes raise."""
    sdkfileid = str(body.get("sdkfileid") or "")
    if not sdkfileid:
        return {"error": "no sdkfileid in the message"}
    name = _UNSAFE.sub("_", msgid)[:200] or hashlib.sha256(msgid.encode()).hexdigest()
    target = root / _UNSAFE.sub("_", corp_id) / name
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + ".part")
    digest, size, index = hashlib.md5(usedforsecurity=False), 0, ""
    try:
        with partial.open("wb") as out:
            for _ in range(MAX_PAGES):
                chunk = sdk.get_media_data(sdkfileid, index)
                out.write(chunk.data)
                digest.update(chunk.data)
                size += len(chunk.data)
                index = chunk.next_index
                if chunk.finished:
                    break
            else:
                return {"error": f"more than {MAX_PAGES} pages: left unfetched"}
    except FinanceSdkError as exc:
        partial.unlink(missing_ok=True)
        if kind_of(exc.code) == "skippable":
            return {"error": str(exc)}
        raise to_sopflow_error(exc.code, exc.call) from None
    partial.replace(target)
    md5 = str(body.get("md5sum") or "")
    return {
        "path": str(target.relative_to(root)),
        "size": size,
        "md5_ok": digest.hexdigest() == md5 if md5 else None,
    }

"""A C-level fake of WeCom's Finance SDK (``finance_sdk.c``, the ABI of
``WeWorkFinanceSdk_C.h``) and the archive it serves, for the tests and the demo.

``compiled_library()`` builds the fake with the system's ``cc`` on first use,
into a cache directory keyed by the source's hash (later runs load the cached
``.so``); ``FakeArchive`` is the data directory the library answers from
(``WWFAKE_DIR``) and its controls; ``seal`` encrypts one message the way WeCom
does (RSA PKCS#1 v1.5 of a random key with the corp's public key, then the
fake's documented ``DecryptData`` scheme).  The plugin's binding loads the fake
exactly as it loads Tencent's library, through ``SOPFLOW_WECOM_ARCHIVE_LIBRARY``.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import secrets
import shutil
import subprocess
import tempfile
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric import padding, rsa

from sopflow_wecom.archive.native import LIBRARY_ENV

SOURCE = Path(__file__).with_name("finance_sdk.c")
#: The environment variable the C fake reads its data directory from.
DATA_DIR_ENV = "WWFAKE_DIR"
#: How to get a compiler, said when there is none.
COMPILER_HINT = (
    "the C fake of WeCom's Finance SDK needs a C compiler (cc): install Debian's gcc "
    "(`apt-get install gcc libc6-dev`; scripts/_bootstrap.sh does it when run as root) "
    "or set CC to a compiler"
)


class CompilerMissing(RuntimeError):
    """No C compiler to build the fake with; the message says how to get one."""


def cache_dir() -> Path:
    """``$XDG_CACHE_HOME/sopflow`` (default ``~/.cache/sopflow``)."""
    base = os.environ.get("XDG_CACHE_HOME", "").strip() or str(Path.home() / ".cache")
    return Path(base) / "sopflow"


def _compiler() -> str | None:
    named = os.environ.get("CC", "").strip()
    return shutil.which(named) if named else shutil.which("cc") or shutil.which("gcc")


def compiled_library(directory: Path | None = None) -> Path:
    """The fake as a shared library in ``directory`` (default ``cache_dir()``),
    compiled when this source has not been yet; ``CompilerMissing`` without ``cc``."""
    source = SOURCE.read_bytes()
    directory = directory or cache_dir()
    lib = directory / f"libfake_finance_sdk-{hashlib.sha256(source).hexdigest()[:16]}.so"
    if lib.is_file():
        return lib
    compiler = _compiler()
    if compiler is None:
        raise CompilerMissing(COMPILER_HINT)
    directory.mkdir(parents=True, exist_ok=True)
    # Compiled under a temporary name and renamed: a process loading the library
    # never sees half a file, and two compiling at once both end with a whole one.
    fd, partial = tempfile.mkstemp(prefix=".fake_finance_sdk-", suffix=".so", dir=directory)
    os.close(fd)
    try:
        done = subprocess.run(
            [compiler, "-shared", "-fPIC", "-O2", "-Wall", "-Werror", "-o", partial, str(SOURCE)],
            capture_output=True,
            text=True,
            timeout=120,
        )
        if done.returncode != 0:
            raise CompilerMissing(f"{compiler} could not build {SOURCE.name}: {done.stderr[-500:]}")
        os.replace(partial, lib)
    finally:
        Path(partial).unlink(missing_ok=True)
    return lib


def seal(
    record: Mapping[str, Any], seq: int, public_key: rsa.RSAPublicKey, version: int = 1
) -> dict[str, Any]:
    """One ``GetChatData`` item for ``record``, encrypted for ``publickey_ver`` ``version``."""
    random_key = secrets.token_hex(16).encode()
    sealed = public_key.encrypt(random_key, padding.PKCS1v15())
    plain = b"WWFK" + json.dumps(record, ensure_ascii=False).encode()
    cipher = bytes(b ^ random_key[i % len(random_key)] for i, b in enumerate(plain))
    return {
        "seq": seq,
        "msgid": record.get("msgid", ""),
        "publickey_ver": version,
        "encrypt_random_key": base64.b64encode(sealed).decode(),
        "encrypt_chat_msg": base64.b64encode(cipher).decode(),
    }


class FakeArchive:
    """The fake's data directory (``WWFAKE_DIR``) and its controls.

    ``secret`` is the archive Secret ``Init`` must be given (a wrong one answers
    ``40001``, as WeCom does)."""

    def __init__(self, directory: Path, library: Path, secret: str) -> None:
        self.dir, self.library = directory, library
        (directory / "media").mkdir(parents=True, exist_ok=True)
        (directory / "secret").write_text(secret)
        self.last_seq = 0

    def environment(self) -> dict[str, str]:
        """The variables that point the binding at this fake and the fake at this directory."""
        return {DATA_DIR_ENV: str(self.dir), LIBRARY_ENV: str(self.library)}

    @staticmethod
    def _line(item: Mapping[str, Any]) -> str:
        return json.dumps(item, separators=(",", ":"), ensure_ascii=False) + "\n"

    def serve(self, items: Iterable[Mapping[str, Any]]) -> None:
        """Replace the archive with these ``GetChatData`` items (ascending seq)."""
        items = list(items)
        (self.dir / "chatdata.jsonl").write_text("".join(map(self._line, items)), encoding="utf-8")
        self.last_seq = max((int(i["seq"]) for i in items), default=0)

    def append(self, item: Mapping[str, Any]) -> None:
        """Archive one more item (its seq past ``last_seq``), as WeCom does as chats go on."""
        if int(item["seq"]) <= self.last_seq:
            raise ValueError(f"seq {item['seq']} is not past the archive's last seq {self.last_seq}")
        with (self.dir / "chatdata.jsonl").open("a", encoding="utf-8") as out:
            out.write(self._line(item))
        self.last_seq = int(item["seq"])

    def fail_with(
        self, rc: int | None = None, errcode: int | None = None, init_rc: int | None = None
    ) -> None:
        """Every GetChatData returns ``rc``, or answers the server's ``errcode``, or Init
        returns ``init_rc``; None clears."""
        for name, value in (("rc", rc), ("errcode", errcode), ("init_rc", init_rc)):
            path = self.dir / name
            if value is None:
                path.unlink(missing_ok=True)
            else:
                path.write_text(str(value))

    def hang(self, from_call: int | None = 1) -> None:
        """GetChatData call number ``from_call`` and later (counted in ``calls``) wait
        until ``hang(None)``; the waiting process can then be killed."""
        path = self.dir / "hang"
        path.write_text(str(from_call)) if from_call is not None else path.unlink(missing_ok=True)

    @property
    def hanging(self) -> bool:
        return (self.dir / "hanging").exists()

    def calls(self) -> list[tuple[int, int]]:
        """``(seq, limit)`` of every ``GetChatData`` call so far."""
        path = self.dir / "calls"
        lines = path.read_text().split() if path.exists() else []
        return [(int(lines[i]), int(lines[i + 1])) for i in range(0, len(lines), 2)]

    def add_media(self, sdkfileid: str, data: bytes) -> None:
        (self.dir / "media" / sdkfileid).write_bytes(data)

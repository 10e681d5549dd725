"""The C-level fake of WeCom's Finance SDK for the archive tests: compiled with the
system's ``cc`` into a shared library, fed chat data encrypted as WeCom does it
(RSA PKCS#1 v1.5 on each message's random key with the corp's public key, then the
fake's documented ``DecryptData`` scheme, see ``archive_fake/fake_finance_sdk.c``)."""

from __future__ import annotations

import base64
import functools
import json
import secrets
import shutil
import subprocess
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

SOURCE = Path(__file__).parent / "archive_fake" / "fake_finance_sdk.c"
ARCHIVE_SECRET = "archive-secret-" + "x" * 28


def build_fake(out_dir: Path) -> Path:
    """Compile the fake with ``cc`` (Debian's ``gcc``; ``scripts/_bootstrap.sh`` installs it)."""
    compiler = shutil.which("cc") or shutil.which("gcc")
    assert compiler, "no C compiler: run scripts/_bootstrap.sh (it installs Debian's gcc)"
    lib = out_dir / "libfake_finance_sdk.so"
    subprocess.run(
        [compiler, "-shared", "-fPIC", "-O2", "-Wall", "-Werror", "-o", str(lib), str(SOURCE)],
        check=True,
        capture_output=True,
        timeout=120,
    )
    return lib


@functools.lru_cache(maxsize=4)
def rsa_key(version: int) -> rsa.RSAPrivateKey:
    """One RSA-2048 test key pair per ``publickey_ver`` (made once per test run)."""
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def pem(version: int) -> str:
    return (
        rsa_key(version)
        .private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        .decode()
    )


def private_keys_secret(*versions: int) -> str:
    """The channel account's ``archive_private_keys`` secret holding these versions."""
    return json.dumps({str(v): pem(v) for v in versions})


def seal(record: Mapping[str, Any], seq: int, version: int = 1) -> dict[str, Any]:
    """One GetChatData item for ``record``, encrypted for ``publickey_ver`` ``version``."""
    random_key = secrets.token_hex(16).encode()
    sealed = rsa_key(version).public_key().encrypt(random_key, padding.PKCS1v15())
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
    """The fake's data directory (``WWFAKE_DIR``) and its controls."""

    def __init__(self, directory: Path, library: Path) -> None:
        self.dir, self.library = directory, library
        (directory / "media").mkdir(parents=True, exist_ok=True)
        (directory / "secret").write_text(ARCHIVE_SECRET)

    def serve(self, items: Iterable[Mapping[str, Any]]) -> None:
        """Replace the archive with these GetChatData items (ascending seq)."""
        lines = [json.dumps(i, separators=(",", ":"), ensure_ascii=False) for i in items]
        (self.dir / "chatdata.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")

    def serve_records(self, records: Iterable[tuple[int, Mapping[str, Any]]], version: int = 1) -> None:
        self.serve(seal(r, seq, version) for seq, r in records)

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
        path = self.dir / "calls"
        lines = path.read_text().split() if path.exists() else []
        return [(int(lines[i]), int(lines[i + 1])) for i in range(0, len(lines), 2)]

    def add_media(self, sdkfileid: str, data: bytes) -> None:
        (self.dir / "media" / sdkfileid).write_bytes(data)


# -- fixtures (imported by the archive test modules) ----------------------------------------------------

import pytest  # noqa: E402


@pytest.fixture(scope="session")
def fake_library(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_fake(tmp_path_factory.mktemp("finance_fake"))


@pytest.fixture
def fake_archive(tmp_path: Path, fake_library: Path, monkeypatch: pytest.MonkeyPatch) -> FakeArchive:
    """The fake's data directory, empty, with the binding pointed at the fake."""
    from sopflow_wecom.archive import native

    directory = tmp_path / "finance_fake"
    directory.mkdir()
    monkeypatch.setenv("WWFAKE_DIR", str(directory))
    monkeypatch.setenv(native.LIBRARY_ENV, str(fake_library))
    return FakeArchive(directory, fake_library)

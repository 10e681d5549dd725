"""The archive tests' side of the C-level fake of WeCom's Finance SDK
(``sopflow_wecom.fake.archive``, which compiles ``fake/finance_sdk.c`` with the
system's ``cc``): the test key pairs by ``publickey_ver`` and the fixtures."""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from sopflow_wecom.fake import archive as fake_sdk

ARCHIVE_SECRET = "archive-secret-" + "x" * 28


def build_fake(out_dir: Path) -> Path:
    """Compile the fake afresh into ``out_dir`` with ``cc`` (``scripts/_bootstrap.sh``
    installs Debian's gcc)."""
    return fake_sdk.compiled_library(out_dir)


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
    """One GetChatData item for ``record``, encrypted for the test key of ``version``."""
    return fake_sdk.seal(record, seq, rsa_key(version).public_key(), version)


class FakeArchive(fake_sdk.FakeArchive):
    """The fake's data directory, its Secret the tests' ``ARCHIVE_SECRET``."""

    def __init__(self, directory: Path, library: Path) -> None:
        super().__init__(directory, library, ARCHIVE_SECRET)

    def serve_records(self, records: Any, version: int = 1) -> None:
        self.serve(seal(r, seq, version) for seq, r in records)


# -- fixtures (imported by the archive test modules) ----------------------------------------------------

import pytest  # noqa: E402


@pytest.fixture(scope="session")
def fake_library(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_fake(tmp_path_factory.mktemp("finance_fake"))


@pytest.fixture
def fake_archive(tmp_path: Path, fake_library: Path, monkeypatch: pytest.MonkeyPatch) -> FakeArchive:
    """The fake's data directory, empty, with the binding pointed at the fake."""
    directory = tmp_path / "finance_fake"
    directory.mkdir()
    fake = FakeArchive(directory, fake_library)
    for name, value in fake.environment().items():
        monkeypatch.setenv(name, value)
    return fake

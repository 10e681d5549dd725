"""The corp's archive RSA key pairs, by ``publickey_ver``.

WeCom encrypts each message's random key with the public key the admin uploaded
(管理工具 → 会话内容存档 → 消息加密公钥) and stamps the message with that key's
version.  Rotating uploads a new key under a new version; messages already
archived keep the old one, so every version still in the archive must stay here.

The keys are the channel account's secret ``archive_private_keys``: a JSON
object of version → PEM private key, stored encrypted like every other secret
and never shown back.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import threading
from collections.abc import Mapping
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from sopflow_sdk import ConfigError, SkippableError

FIELD = "secrets.archive_private_keys"
_FORMAT = 'a JSON object of publickey_ver → PEM private key, e.g. {"1": "-----BEGIN PRIVATE KEY-----\\n…"}'


class ArchiveKeys:
    """The private keys by version; ``decrypt_random_key`` opens one message's key."""

    def __init__(self, keys: Mapping[int, rsa.RSAPrivateKey]) -> None:
        self._keys = dict(keys)

    def __repr__(self) -> str:
        return f"ArchiveKeys(versions={sorted(self._keys)})"

    @property
    def versions(self) -> list[int]:
        return sorted(self._keys)

    def has(self, version: int) -> bool:
        return version in self._keys

    def decrypt_random_key(self, version: int, encrypt_random_key: str) -> bytes:
        """RSA PKCS#1 v1.5 decryption of ``Base64(encrypt_random_key)`` with the key of
        ``version``; ``SkippableError`` when this one message's key does not open."""
        try:
            sealed = base64.b64decode(encrypt_random_key, validate=True)
            return self._keys[version].decrypt(sealed, padding.PKCS1v15())
        except (ValueError, binascii.Error):
            raise SkippableError(
                f"encrypt_random_key does not decrypt with the private key of publickey_ver {version}"
            ) from None


#: Parsed keys by the SHA-256 of their secret.  Loading an RSA key checks it, tens of
#: milliseconds a key: paid once per key set, not on every pull and probe.  Keyed by
#: a digest so the cache never holds the secret's text.
_PARSED: dict[str, ArchiveKeys] = {}
_PARSED_MAX = 64
_parsed_lock = threading.Lock()


def parse_keys(raw: Any) -> ArchiveKeys:
    """``archive_private_keys`` as ``ArchiveKeys``; a ``ConfigError`` naming the field and
    the version at fault (never the key itself) when it is not usable."""
    if hasattr(raw, "reveal"):
        raw = raw.reveal()
    digest = hashlib.sha256(str(raw).encode()).hexdigest() if raw else ""
    with _parsed_lock:
        cached = _PARSED.get(digest)
    if cached is not None:
        return cached
    keys = _parse(raw)
    with _parsed_lock:
        if len(_PARSED) >= _PARSED_MAX:
            _PARSED.pop(next(iter(_PARSED)))  # the oldest: key sets rarely change
        _PARSED[digest] = keys
    return keys


def _parse(raw: Any) -> ArchiveKeys:
    if not raw:
        raise ConfigError([(FIELD, f"required for the archive: {_FORMAT}")], subject="WeCom archive")
    try:
        document = json.loads(raw)
    except (TypeError, ValueError):
        document = None
    if not isinstance(document, dict) or not document:
        raise ConfigError([(FIELD, f"not {_FORMAT}")], subject="WeCom archive")
    keys: dict[int, rsa.RSAPrivateKey] = {}
    problems: list[tuple[str, str]] = []
    for version, pem in document.items():
        where = f"{FIELD}[{version!r}]"
        if not str(version).isdigit():
            problems.append((where, "the version is the publickey_ver number shown in the admin console"))
            continue
        try:
            key = serialization.load_pem_private_key(str(pem).encode(), password=None)
        except (TypeError, ValueError):
            problems.append((where, "not an unencrypted PEM private key (PKCS#1 or PKCS#8)"))
            continue
        if not isinstance(key, rsa.RSAPrivateKey):
            problems.append((where, "not an RSA key: WeCom's archive uses RSA-2048"))
            continue
        keys[int(version)] = key
    if problems:
        raise ConfigError(problems, subject="WeCom archive")
    return ArchiveKeys(keys)

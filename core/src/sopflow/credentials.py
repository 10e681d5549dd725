"""Channel credentials encrypted at rest.

Fernet (AES-128-CBC + HMAC-SHA256) under a key derived from
``SOPFLOW_SECRET_KEY`` with HKDF, so any long random string works as the
setting and a wrong key fails loudly instead of yielding garbage.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from typing import Any

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from sopflow_sdk import FatalError, Secret


class CredentialBox:
    def __init__(self, secret_key: Secret) -> None:
        raw = HKDF(algorithm=hashes.SHA256(), length=32, salt=b"sopflow-credentials", info=b"v1").derive(
            secret_key.reveal().encode()
        )
        self._fernet = Fernet(base64.urlsafe_b64encode(raw))

    def seal(self, secrets: Mapping[str, str]) -> str:
        if not secrets:
            return ""
        return self._fernet.encrypt(json.dumps(dict(secrets)).encode()).decode()

    def open(self, ciphertext: str) -> dict[str, Secret]:
        if not ciphertext:
            return {}
        try:
            values: dict[str, Any] = json.loads(self._fernet.decrypt(ciphertext.encode()))
        except InvalidToken as exc:
            raise FatalError(
                "channel credentials cannot be decrypted: SOPFLOW_SECRET_KEY differs from "
                "the key they were stored with; restore the old key or re-enter the credentials"
            ) from exc
        return {k: Secret(str(v)) for k, v in values.items()}

    def __repr__(self) -> str:
        return "CredentialBox(***)"

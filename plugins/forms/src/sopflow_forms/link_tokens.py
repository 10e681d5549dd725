"""Signed per-customer tokens for links sopflow hands out (tracked links, form links).

A token is ``<payload>.<mac>``: the payload is base64url JSON, the mac the first
128 bits of HMAC-SHA256 over the payload under the tenant's signing key, in
base64url.  Verification is constant-time; a token signed under another key,
or changed by one character, is refused.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from typing import Any

MAC_BYTES = 16


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _mac(key: str, payload: str) -> str:
    return _b64(hmac.new(key.encode(), payload.encode(), hashlib.sha256).digest()[:MAC_BYTES])


def sign(key: str, claims: dict[str, Any]) -> str:
    payload = _b64(json.dumps(claims, separators=(",", ":"), sort_keys=True).encode())
    return f"{payload}.{_mac(key, payload)}"


def verify(key: str, token: str) -> dict[str, Any] | None:
    """The claims of a token signed under ``key``, or ``None``."""
    payload, _, mac = token.partition(".")
    if not payload or not mac or not hmac.compare_digest(_mac(key, payload), mac):
        return None
    try:
        claims = json.loads(_unb64(payload))
    except ValueError:
        return None
    return claims if isinstance(claims, dict) else None

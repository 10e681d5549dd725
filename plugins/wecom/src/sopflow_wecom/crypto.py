"""WeCom callback crypto (WXBizMsgCrypt), strict where Tencent's sample is lax.

WeCom signs and encrypts every callback: SHA1 over the sorted
``[token, timestamp, nonce, encrypt]`` and AES-256-CBC (IV = key[:16]) over
``random(16) || len(4, big endian) || msg || receive_id`` with PKCS#7 padding to
32-byte blocks.  The official sample does not check the pad byte and compares
signatures with ``==``; here every check is explicit, the comparison is
constant-time, and each failure raises its own ``SignatureError`` subclass whose
message never contains the token or the key.  The XML helpers refuse DOCTYPE
and ENTITY declarations so a callback cannot smuggle in an XXE payload.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import re
import secrets
import struct
import time
import xml.etree.ElementTree as ET
from collections.abc import Mapping

import attrs
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from sopflow_sdk import ConfigError, Secret, SignatureError

BLOCK_SIZE = 32
_RANDOM_LEN = 16
_AES_KEY_RE = re.compile(r"[A-Za-z0-9]{43}")
_FORBIDDEN_XML = re.compile(r"<!\s*(DOCTYPE|ENTITY)", re.IGNORECASE)


class BadSignature(SignatureError):
    """``msg_signature`` does not match the token, timestamp, nonce and payload."""


class BadPadding(SignatureError):
    """The decrypted buffer does not end in valid 32-byte PKCS#7 padding."""


class WrongReceiveId(SignatureError):
    """The message was encrypted for another corp (or suite) than this account."""


class Malformed(SignatureError):
    """The payload is not valid base64, XML or WXBizMsgCrypt framing."""


@attrs.frozen
class Envelope:
    """The outer ``<xml>`` of a callback POST: who it is for and the ciphertext."""

    to_user_name: str
    encrypt: str
    agent_id: str = ""


def pkcs7_pad(data: bytes, block_size: int = BLOCK_SIZE) -> bytes:
    """Pad to a multiple of ``block_size`` with 1..block_size bytes of the pad length."""
    n = block_size - len(data) % block_size
    return data + bytes([n]) * n


def pkcs7_unpad(data: bytes, block_size: int = BLOCK_SIZE) -> bytes:
    """Strip PKCS#7 padding, rejecting a pad byte of 0, > ``block_size`` or inconsistent."""
    if not data:
        raise BadPadding("decrypted payload is empty; it cannot carry PKCS#7 padding")
    n = data[-1]
    if n < 1 or n > block_size or n > len(data):
        raise BadPadding(f"PKCS#7 pad byte {n} is outside 1..{block_size}")
    if not hmac.compare_digest(data[-n:], bytes([n]) * n):
        raise BadPadding("PKCS#7 padding bytes are inconsistent")
    return data[:-n]


def sha1_signature(token: str, timestamp: str, nonce: str, encrypted: str) -> str:
    """SHA1 hex digest of the lexicographically sorted, concatenated four values."""
    parts = sorted([token, str(timestamp), str(nonce), encrypted])
    return hashlib.sha1("".join(parts).encode("utf-8")).hexdigest()


class WeComCrypto:
    """Sign, encrypt, verify and decrypt WeCom callbacks for one app.

    ``receive_id`` is the corp id for self-built apps, the suite id for
    third-party command callbacks, or ``""`` for personal-subject apps.
    """

    def __init__(self, token: str | Secret, encoding_aes_key: str | Secret, receive_id: str) -> None:
        self._token = Secret(token)
        aes = Secret(encoding_aes_key)
        if not _AES_KEY_RE.fullmatch(aes.reveal()):
            raise ConfigError(
                [("encoding_aes_key", "must be the 43 letters/digits shown in the WeCom console")],
                subject="WeCom callback settings",
            )
        self._key = base64.b64decode(aes.reveal() + "=")
        self.receive_id = receive_id

    def __repr__(self) -> str:
        return f"WeComCrypto(receive_id={self.receive_id!r})"

    def signature(self, timestamp: str, nonce: str, encrypted: str) -> str:
        return sha1_signature(self._token.reveal(), timestamp, nonce, encrypted)

    def check_signature(self, msg_signature: str, timestamp: str, nonce: str, encrypted: str) -> None:
        """Raise ``BadSignature`` unless ``msg_signature`` matches (constant-time)."""
        expected = self.signature(timestamp, nonce, encrypted)
        if not hmac.compare_digest(expected.encode(), (msg_signature or "").lower().encode()):
            raise BadSignature(
                "WeCom msg_signature does not match; check that the callback Token in the "
                "WeCom console equals the one configured for this account"
            )

    def _cipher(self) -> Cipher:
        return Cipher(algorithms.AES(self._key), modes.CBC(self._key[:16]))

    def encrypt(
        self,
        plaintext: str,
        nonce: str | None = None,
        timestamp: str | int | None = None,
        random16: bytes | None = None,
    ) -> tuple[str, str, str, str]:
        """Encrypt and sign; returns ``(encrypted_b64, signature, timestamp, nonce)``."""
        random16 = os.urandom(_RANDOM_LEN) if random16 is None else random16
        if len(random16) != _RANDOM_LEN:
            raise ValueError("random16 must be exactly 16 bytes")
        msg = plaintext.encode("utf-8")
        buf = random16 + struct.pack(">I", len(msg)) + msg + self.receive_id.encode("utf-8")
        encryptor = self._cipher().encryptor()
        raw = encryptor.update(pkcs7_pad(buf)) + encryptor.finalize()
        encrypted = base64.b64encode(raw).decode("ascii")
        ts = str(int(time.time()) if timestamp is None else timestamp)
        nonce = nonce if nonce is not None else str(secrets.randbelow(10**10))
        return encrypted, self.signature(ts, nonce, encrypted), ts, nonce

    def decrypt_raw(self, encrypted: str) -> str:
        """Decrypt without checking the signature (the caller must have checked it)."""
        try:
            raw = base64.b64decode(encrypted, validate=True)
        except (binascii.Error, ValueError):
            raise Malformed("encrypted payload is not valid base64") from None
        if not raw or len(raw) % BLOCK_SIZE:
            raise Malformed("encrypted payload is not a whole number of 32-byte blocks")
        decryptor = self._cipher().decryptor()
        buf = pkcs7_unpad(decryptor.update(raw) + decryptor.finalize())
        if len(buf) < _RANDOM_LEN + 4:
            raise Malformed("decrypted payload is too short for WXBizMsgCrypt framing")
        (msg_len,) = struct.unpack(">I", buf[_RANDOM_LEN : _RANDOM_LEN + 4])
        start = _RANDOM_LEN + 4
        if start + msg_len > len(buf):
            raise Malformed("declared message length exceeds the decrypted payload")
        msg, receive_id = buf[start : start + msg_len], buf[start + msg_len :]
        if not hmac.compare_digest(receive_id, self.receive_id.encode("utf-8")):
            raise WrongReceiveId(
                "message was encrypted for another ReceiveId (corp id or suite id); "
                "check the corp id configured for this account"
            )
        try:
            return msg.decode("utf-8")
        except UnicodeDecodeError:
            raise Malformed("decrypted message is not valid UTF-8") from None

    def decrypt(self, msg_signature: str, timestamp: str, nonce: str, encrypted: str) -> str:
        """Verify the signature, then decrypt and return the message text."""
        self.check_signature(msg_signature, timestamp, nonce, encrypted)
        return self.decrypt_raw(encrypted)

    def verify_url(self, msg_signature: str, timestamp: str, nonce: str, echostr: str) -> str:
        """Answer the console's GET handshake: the plaintext ``echostr`` to return as-is."""
        return self.decrypt(msg_signature, timestamp, nonce, echostr)

    def decrypt_envelope(self, msg_signature: str, timestamp: str, nonce: str, body: bytes | str) -> str:
        """Parse a callback POST body, verify and decrypt its ``Encrypt``."""
        envelope = parse_envelope(body)
        return self.decrypt(msg_signature, timestamp, nonce, envelope.encrypt)

    def encrypt_reply(
        self, plaintext: str, nonce: str | None = None, timestamp: str | int | None = None
    ) -> str:
        """Build an encrypted passive-reply envelope for ``plaintext``."""
        encrypted, signature, ts, nonce = self.encrypt(plaintext, nonce=nonce, timestamp=timestamp)
        return build_reply(encrypted, signature, ts, nonce)


def _cdata(value: str) -> str:
    return "<![CDATA[" + value.replace("]]>", "]]]]><![CDATA[>") + "]]>"


def parse_xml(text: bytes | str) -> dict[str, str | list[str]]:
    """Parse a flat WeCom ``<xml>`` document into ``{tag: text}``.

    An element with children (``<MemChangeList><Item>..``) becomes a list of the
    children's texts.  DOCTYPE and ENTITY declarations are refused outright.
    """
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError:
            raise Malformed("XML body is not valid UTF-8") from None
    if _FORBIDDEN_XML.search(text):
        raise Malformed("XML with DOCTYPE or ENTITY declarations is refused")
    try:
        root = ET.fromstring(text)
    except ET.ParseError:
        raise Malformed("body is not well-formed XML") from None
    result: dict[str, str | list[str]] = {}
    for child in root:
        if len(child):
            result[child.tag] = [(item.text or "").strip() for item in child]
        else:
            result[child.tag] = (child.text or "").strip()
    return result


def to_xml(fields: Mapping[str, str | int | list[str]]) -> str:
    """Render a flat mapping the way WeCom does: strings in CDATA, numbers bare."""
    parts = ["<xml>"]
    for tag, value in fields.items():
        if isinstance(value, list):
            inner = "".join(f"<Item>{_cdata(str(v))}</Item>" for v in value)
            parts.append(f"<{tag}>{inner}</{tag}>")
        elif isinstance(value, int):
            parts.append(f"<{tag}>{value}</{tag}>")
        else:
            parts.append(f"<{tag}>{_cdata(value)}</{tag}>")
    parts.append("</xml>")
    return "".join(parts)


def parse_envelope(body: bytes | str) -> Envelope:
    """Read ``ToUserName``, ``Encrypt`` and ``AgentID`` from a callback POST body."""
    fields = parse_xml(body)
    encrypt = fields.get("Encrypt")
    if not isinstance(encrypt, str) or not encrypt:
        raise Malformed("callback XML has no <Encrypt> element")
    to_user = fields.get("ToUserName", "")
    agent = fields.get("AgentID", "")
    return Envelope(
        to_user_name=to_user if isinstance(to_user, str) else "",
        encrypt=encrypt,
        agent_id=agent if isinstance(agent, str) else "",
    )


def build_envelope(to_user_name: str, encrypted: str, agent_id: str = "") -> str:
    """The POST body WeCom sends to a callback URL."""
    return to_xml({"ToUserName": to_user_name, "Encrypt": encrypted, "AgentID": agent_id})


def build_reply(encrypted: str, signature: str, timestamp: str, nonce: str) -> str:
    """The passive-reply XML: ``Encrypt``, ``MsgSignature``, ``TimeStamp``, ``Nonce``."""
    return (
        f"<xml><Encrypt>{_cdata(encrypted)}</Encrypt>"
        f"<MsgSignature>{_cdata(signature)}</MsgSignature>"
        f"<TimeStamp>{int(timestamp)}</TimeStamp>"
        f"<Nonce>{_cdata(nonce)}</Nonce></xml>"
    )

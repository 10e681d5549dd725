"""WXBizMsgCrypt: the official vectors, round trips, and every way to fail."""

from __future__ import annotations

import base64
import string
import struct

import pytest
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from hypothesis import given, settings
from hypothesis import strategies as st
from sopflow_sdk import ConfigError, SignatureError
from sopflow_wecom.crypto import (
    BadPadding,
    BadSignature,
    Malformed,
    WeComCrypto,
    WrongReceiveId,
    build_envelope,
    build_reply,
    parse_envelope,
    parse_xml,
    pkcs7_pad,
    pkcs7_unpad,
)

ALNUM = string.ascii_letters + string.digits


@pytest.fixture
def crypto(vectors: dict) -> WeComCrypto:
    return WeComCrypto(vectors["token"], vectors["encoding_aes_key"], vectors["receive_id"])


def raw_encrypt(vectors: dict, buf: bytes) -> str:
    """Encrypt an arbitrary (already padded) buffer, bypassing our padding."""
    key = base64.b64decode(vectors["encoding_aes_key"] + "=")
    enc = Cipher(algorithms.AES(key), modes.CBC(key[:16])).encryptor()
    return base64.b64encode(enc.update(buf) + enc.finalize()).decode()


def signed(crypto: WeComCrypto, encrypted: str) -> tuple[str, str, str, str]:
    return crypto.signature("1476422779", "1597212914", encrypted), "1476422779", "1597212914", encrypted


# -- official vectors --------------------------------------------------------------------


def test_official_signature_vectors(crypto: WeComCrypto, vectors: dict) -> None:
    v = vectors["verify_url"]
    assert crypto.signature(v["timestamp"], v["nonce"], v["echostr"]) == v["msg_signature"]
    d = vectors["decrypt_message"]
    assert crypto.signature(d["timestamp"], d["nonce"], d["encrypt"]) == d["msg_signature"]


def test_official_verify_url_vector(crypto: WeComCrypto, vectors: dict) -> None:
    v = vectors["verify_url"]
    answer = crypto.verify_url(v["msg_signature"], v["timestamp"], v["nonce"], v["echostr"])
    assert answer == v["plaintext"]


def test_official_decrypt_vector(crypto: WeComCrypto, vectors: dict) -> None:
    d = vectors["decrypt_message"]
    plain = crypto.decrypt(d["msg_signature"], d["timestamp"], d["nonce"], d["encrypt"])
    assert plain == d["plaintext"]
    assert parse_xml(plain)["Content"] == "你好"


def test_official_vector_via_envelope(crypto: WeComCrypto, vectors: dict) -> None:
    d = vectors["decrypt_message"]
    body = build_envelope(vectors["receive_id"], d["encrypt"], "1000002").encode()
    assert parse_envelope(body).encrypt == d["encrypt"]
    plain = crypto.decrypt_envelope(d["msg_signature"], d["timestamp"], d["nonce"], body)
    assert plain == d["plaintext"]


def test_official_vector_pads_to_32_byte_blocks(vectors: dict) -> None:
    d = vectors["decrypt_message"]
    raw = base64.b64decode(d["encrypt"])
    key = base64.b64decode(vectors["encoding_aes_key"] + "=")
    dec = Cipher(algorithms.AES(key), modes.CBC(key[:16])).decryptor()
    buf = dec.update(raw) + dec.finalize()
    assert buf[-1] == 22 and len(buf) % 32 == 0


# -- round trips ---------------------------------------------------------------------------


@settings(max_examples=150, deadline=None)
@given(plaintext=st.text(), receive_id=st.text(max_size=40))
def test_round_trip_random_text_and_receive_id(vectors: dict, plaintext: str, receive_id: str) -> None:
    c = WeComCrypto(vectors["token"], vectors["encoding_aes_key"], receive_id)
    encrypted, signature, ts, nonce = c.encrypt(plaintext)
    assert c.decrypt(signature, ts, nonce, encrypted) == plaintext


@settings(max_examples=60, deadline=None)
@given(
    token=st.text(alphabet=ALNUM, min_size=32, max_size=32),
    key=st.text(alphabet=ALNUM, min_size=43, max_size=43),
    plaintext=st.text(max_size=300),
    random16=st.binary(min_size=16, max_size=16),
)
def test_round_trip_random_keys(token: str, key: str, plaintext: str, random16: bytes) -> None:
    c = WeComCrypto(token, key, "wwcorp")
    encrypted, signature, ts, nonce = c.encrypt(plaintext, nonce="n1", timestamp=42, random16=random16)
    assert (ts, nonce) == ("42", "n1")
    assert len(base64.b64decode(encrypted)) % 32 == 0
    assert c.decrypt(signature, ts, nonce, encrypted) == plaintext


@given(st.binary(max_size=100))
def test_pkcs7_pad_round_trip(data: bytes) -> None:
    padded = pkcs7_pad(data)
    assert len(padded) % 32 == 0 and 1 <= len(padded) - len(data) <= 32
    assert pkcs7_unpad(padded) == data


def test_reply_envelope_decrypts(crypto: WeComCrypto) -> None:
    reply = crypto.encrypt_reply("<xml><Content>hi</Content></xml>", nonce="123", timestamp=1700000000)
    fields = parse_xml(reply)
    assert fields["TimeStamp"] == "1700000000" and fields["Nonce"] == "123"
    plain = crypto.decrypt(str(fields["MsgSignature"]), "1700000000", "123", str(fields["Encrypt"]))
    assert plain == "<xml><Content>hi</Content></xml>"
    assert build_reply("e", "s", "1", "n").startswith("<xml><Encrypt><![CDATA[e]]>")


# -- failures ---------------------------------------------------------------------------------


def test_tampered_signature(crypto: WeComCrypto, vectors: dict) -> None:
    d = vectors["decrypt_message"]
    bad = ("1" if d["msg_signature"][0] != "1" else "2") + d["msg_signature"][1:]
    with pytest.raises(BadSignature) as info:
        crypto.decrypt(bad, d["timestamp"], d["nonce"], d["encrypt"])
    assert isinstance(info.value, SignatureError)
    with pytest.raises(BadSignature):
        crypto.decrypt(d["msg_signature"], str(int(d["timestamp"]) + 1), d["nonce"], d["encrypt"])
    with pytest.raises(BadSignature):
        crypto.decrypt("", d["timestamp"], d["nonce"], d["encrypt"])


def test_tampered_ciphertext_fails_signature(crypto: WeComCrypto, vectors: dict) -> None:
    d = vectors["decrypt_message"]
    tampered = ("A" if d["encrypt"][0] != "A" else "B") + d["encrypt"][1:]
    with pytest.raises(BadSignature):
        crypto.decrypt(d["msg_signature"], d["timestamp"], d["nonce"], tampered)


def test_wrong_receive_id(vectors: dict) -> None:
    other = WeComCrypto(vectors["token"], vectors["encoding_aes_key"], "ww_other_corp")
    d = vectors["decrypt_message"]
    with pytest.raises(WrongReceiveId):
        other.decrypt(d["msg_signature"], d["timestamp"], d["nonce"], d["encrypt"])


def _framed(msg: bytes, receive_id: bytes) -> bytes:
    return b"0123456789abcdef" + struct.pack(">I", len(msg)) + msg + receive_id


@pytest.mark.parametrize(
    "tail",
    [
        pytest.param(b"\x00", id="pad-byte-0"),
        pytest.param(bytes([33]), id="pad-byte-33"),
        pytest.param(b"\x01\x02\x03\x04\x05", id="inconsistent"),
        pytest.param(b"\x05\x05\x05\x04\x05", id="one-byte-off"),
    ],
)
def test_bad_padding(crypto: WeComCrypto, vectors: dict, tail: bytes) -> None:
    body = _framed(b"<xml/>", vectors["receive_id"].encode())
    filler = 64 - len(body) - len(tail)
    encrypted = raw_encrypt(vectors, body + b"\x07" * filler + tail)
    with pytest.raises(BadPadding):
        crypto.decrypt(*signed(crypto, encrypted))


def test_declared_length_too_long(crypto: WeComCrypto, vectors: dict) -> None:
    buf = b"0123456789abcdef" + struct.pack(">I", 10_000) + b"<xml/>"
    encrypted = raw_encrypt(vectors, pkcs7_pad(buf))
    with pytest.raises(Malformed):
        crypto.decrypt(*signed(crypto, encrypted))


@pytest.mark.parametrize(
    "encrypted",
    [
        pytest.param("not base64 !!", id="not-base64"),
        pytest.param("", id="empty"),
        pytest.param(base64.b64encode(b"x" * 16).decode(), id="one-aes-block"),
    ],
)
def test_malformed_payloads(crypto: WeComCrypto, encrypted: str) -> None:
    with pytest.raises(Malformed):
        crypto.decrypt(*signed(crypto, encrypted))


def test_truncated_base64(crypto: WeComCrypto, vectors: dict) -> None:
    truncated = vectors["decrypt_message"]["encrypt"][:-7]
    with pytest.raises(Malformed):
        crypto.decrypt(*signed(crypto, truncated))
    shorter = vectors["decrypt_message"]["encrypt"][:-4]  # valid base64, cut blocks
    with pytest.raises(Malformed):
        crypto.decrypt(*signed(crypto, shorter))


@pytest.mark.parametrize(
    "body",
    [
        '<?xml version="1.0"?><!DOCTYPE xml [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
        "<xml><Encrypt>&x;</Encrypt></xml>",
        "<!DOCTYPE xml><xml><Encrypt>a</Encrypt></xml>",
        '<xml><!ENTITY x "y"><Encrypt>a</Encrypt></xml>',
        "<xml><Encrypt>unclosed",
        "<xml><ToUserName>a</ToUserName></xml>",
    ],
)
def test_envelope_rejects_xxe_and_junk(body: str) -> None:
    with pytest.raises(Malformed):
        parse_envelope(body)


def test_errors_never_contain_token_or_key(crypto: WeComCrypto, vectors: dict) -> None:
    d = vectors["decrypt_message"]
    failures = [
        lambda: crypto.decrypt("0" * 40, d["timestamp"], d["nonce"], d["encrypt"]),
        lambda: WeComCrypto(vectors["token"], vectors["encoding_aes_key"], "x").decrypt(
            d["msg_signature"], d["timestamp"], d["nonce"], d["encrypt"]
        ),
        lambda: crypto.decrypt(*signed(crypto, "%%%")),
    ]
    for fail in failures:
        with pytest.raises(SignatureError) as info:
            fail()
        text = f"{info.value} {info.value!r} {info.value.internal_message}"
        assert vectors["token"] not in text and vectors["encoding_aes_key"] not in text
    assert vectors["token"] not in repr(crypto)


def test_bad_encoding_aes_key_is_a_config_error(vectors: dict) -> None:
    with pytest.raises(ConfigError) as info:
        WeComCrypto(vectors["token"], "too-short", "ww")
    assert "43" in str(info.value)

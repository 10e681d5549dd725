"""The Finance SDK binding against the C fake (same ABI, compiled here) and against
Tencent's real library shipped by ``pyweworkfinance`` (offline)."""

from __future__ import annotations

import ctypes
import json
from pathlib import Path
from typing import Any

import pytest
from archive_support import ARCHIVE_SECRET, FakeArchive, fake_archive, fake_library, private_keys_secret, seal
from sopflow_sdk import ConfigError, FatalError, RetriableError, Secret, SkippableError
from sopflow_wecom.archive import native
from sopflow_wecom.archive.errors import CODES, FinanceSdkError
from sopflow_wecom.archive.keys import parse_keys
from sopflow_wecom.archive.native import FinanceSdk
from sopflow_wecom.archive.source import FinanceArchiveSource

DATA = Path(__file__).parent / "data" / "wecom_archive_messages.json"
CORP = "wwarchivetest0001"


def recorded() -> list[tuple[int, dict[str, Any]]]:
    return [(m["seq"], m["record"]) for m in json.loads(DATA.read_text(encoding="utf-8"))["messages"]]


__all__ = ["fake_archive", "fake_library"]  # fixtures


@pytest.fixture
def fake(fake_archive: FakeArchive) -> FakeArchive:
    fake_archive.serve_records(recorded())
    return fake_archive


def source(secret: str = ARCHIVE_SECRET, versions: tuple[int, ...] = (1,)) -> FinanceArchiveSource:
    sdk = FinanceSdk(CORP, Secret(secret))
    return FinanceArchiveSource(sdk, parse_keys(private_keys_secret(*versions)), subject="account 1")


def test_messages_come_back_decrypted_in_seq_order(fake: FakeArchive) -> None:
    got = source().fetch(0, 1000)
    assert [(m.seq, dict(m.record)) for m in got] == recorded()
    assert all(m.skipped is None for m in got)
    page = source().fetch(103, 2)
    assert [m.seq for m in page] == [104, 105]
    assert fake.calls() == [(0, 1000), (103, 2)]


def test_keys_of_several_versions_open_their_own_messages(fake: FakeArchive) -> None:
    """Key rotation: messages from before it carry the old publickey_ver."""
    records = recorded()
    fake.serve([seal(r, s, version=1 if s < 104 else 2) for s, r in records])
    got = source(versions=(1, 2)).fetch(0, 1000)
    assert [dict(m.record) for m in got] == [r for _, r in records]
    with pytest.raises(FatalError, match=r"publickey_ver 2, which secrets.archive_private_keys lacks"):
        source(versions=(1,)).fetch(0, 1000)


def test_a_message_that_does_not_decrypt_is_skipped_not_fatal(fake: FakeArchive) -> None:
    records = recorded()
    items = [seal(r, s) for s, r in records]
    items[1]["encrypt_random_key"] = "bm90IGFuIFJTQSBibG9jaw=="  # RSA refuses it
    broken_body = seal(records[2][1], records[2][0])
    other = seal(records[3][1], records[3][0])
    broken_body["encrypt_chat_msg"] = other["encrypt_chat_msg"]  # another message's key: 10008
    items[2] = broken_body
    fake.serve(items)
    got = source().fetch(0, 1000)
    assert [m.seq for m in got] == [s for s, _ in records]  # the cursor can pass them
    assert [m.seq for m in got if m.skipped] == [records[1][0], records[2][0]]
    assert "publickey_ver 1" in str(got[1].skipped) and "10008" in str(got[2].skipped)
    assert got[1].msgid == records[1][1]["msgid"]


@pytest.mark.parametrize(
    ("code", "error"),
    [
        (10000, FatalError),
        (10001, RetriableError),
        (10002, RetriableError),
        (10003, RetriableError),
        (10004, FatalError),
        (10009, FatalError),
        (10011, FatalError),
    ],
)
def test_getchatdata_return_codes_map_to_the_error_tree(fake: FakeArchive, code: int, error: type) -> None:
    fake.fail_with(rc=code)
    with pytest.raises(error, match=rf"GetChatData returned {code} \(") as raised:
        source().fetch(0, 10)
    assert type(raised.value) is error and raised.value.code == code  # type: ignore[attr-defined]
    assert CODES[code][2] in raised.value.user_message  # names the fix


@pytest.mark.parametrize(
    ("errcode", "error"),
    [(301042, FatalError), (40001, FatalError), (-1, RetriableError), (45009, RetriableError)],
)
def test_server_errcodes_map_to_the_error_tree(fake: FakeArchive, errcode: int, error: type) -> None:
    fake.fail_with(errcode=errcode)
    with pytest.raises(error, match=rf"returned {errcode} "):
        source().fetch(0, 10)


def test_a_wrong_secret_is_fatal_and_names_the_setting(fake: FakeArchive) -> None:
    with pytest.raises(FatalError, match=r"40001 \(invalid secret\); set secrets.archive_secret") as raised:
        source(secret="not-the-secret-000").fetch(0, 10)
    assert "not-the-secret-000" not in str(raised.value)


def test_every_mapped_code_has_a_kind_and_a_fix() -> None:
    assert set(range(10000, 10012)) <= set(CODES) and 301042 in CODES
    assert all(kind in ("retriable", "fatal", "skippable") and fix for kind, _, fix in CODES.values())
    assert SkippableError  # the per-message kind, exercised in the skipping test


def test_media_is_read_in_pages_by_indexbuf(fake: FakeArchive) -> None:
    blob = bytes(range(256)) * 10  # 2,560 bytes: three pages of the fake's 1,000
    fake.add_media("file-abc", blob)
    with FinanceSdk(CORP, Secret(ARCHIVE_SECRET)) as sdk:
        pages, index = [], ""
        for _ in range(10):
            chunk = sdk.get_media_data("file-abc", index)
            pages.append(chunk.data)
            index = chunk.next_index
            if chunk.finished:
                break
        assert b"".join(pages) == blob and len(pages) == 3
        with pytest.raises(FinanceSdkError, match="10005"):
            sdk.get_media_data("no-such-file")


def test_a_missing_library_names_the_extra_and_the_setting(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv(native.LIBRARY_ENV, str(tmp_path / "nope.so"))
    with pytest.raises(ConfigError, match=r"SOPFLOW_WECOM_ARCHIVE_LIBRARY: no file at .*nope\.so"):
        native.library_path()
    monkeypatch.delenv(native.LIBRARY_ENV)
    monkeypatch.setattr(native, "shipped_library", lambda: None)
    with pytest.raises(ConfigError) as raised:
        native.library_path()
    assert "sopflow-wecom[archive]" in str(raised.value) and native.LIBRARY_ENV in str(raised.value)
    (tmp_path / "bad.so").write_text("not a library")
    monkeypatch.setenv(native.LIBRARY_ENV, str(tmp_path / "bad.so"))
    with pytest.raises(ConfigError, match="does not load"):
        native.load()


# -- Tencent's own library, offline --------------------------------------------------------------------


def test_the_real_library_answers_through_the_binding(monkeypatch: pytest.MonkeyPatch) -> None:
    """``libWeWorkFinanceSdk_C`` from ``pyweworkfinance``: the signatures hold (Init 0,
    GetChatData fails fast offline with 10001 = retriable, DecryptData with a wrong
    key 10008 = skippable)."""
    monkeypatch.delenv(native.LIBRARY_ENV, raising=False)
    real = native.shipped_library()
    assert real is not None and real.name.startswith("libWeWorkFinanceSdk_C"), (
        "install sopflow-wecom[archive]"
    )
    assert isinstance(native.load(real), ctypes.CDLL)
    sdk = FinanceSdk("wwnotarealcorp00001", Secret("not-a-real-archive-secret"), library=real, timeout=2)
    try:
        with pytest.raises(FinanceSdkError) as raised:
            # a proxy on a closed local port keeps the call off the network whatever the machine has
            sdk.get_chat_data(0, 10, proxy="http://127.0.0.1:9")
        assert raised.value.code == 10001 and raised.value.kind == "retriable"
        with pytest.raises(FinanceSdkError) as wrong:
            sdk.decrypt_data(b"0" * 32, seal({"msgid": "m1"}, 1)["encrypt_chat_msg"])
        assert wrong.value.code == 10008 and wrong.value.kind == "skippable"
    finally:
        sdk.close()

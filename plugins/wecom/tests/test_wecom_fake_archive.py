"""The C fake of the Finance SDK as the test kit ships it: compiled once with ``cc``
into the cache, reused by later runs, and a clear error without a compiler."""

from __future__ import annotations

from pathlib import Path

import pytest
from sopflow_wecom.fake import archive as fake_sdk


def test_the_fake_is_compiled_once_then_loaded_from_the_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    built = fake_sdk.compiled_library()
    assert built.parent == tmp_path / "sopflow" and built.is_file()
    assert not list(built.parent.glob(".fake_finance_sdk-*"))  # no half-written library left
    monkeypatch.setenv("CC", "no-such-compiler")  # a second run needs no compiler
    assert fake_sdk.compiled_library() == built


def test_without_a_compiler_the_error_says_how_to_get_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    monkeypatch.delenv("CC", raising=False)
    with pytest.raises(fake_sdk.CompilerMissing, match=r"apt-get install gcc libc6-dev"):
        fake_sdk.compiled_library()
    assert not (tmp_path / "sopflow").exists() or not list((tmp_path / "sopflow").iterdir())


def test_the_archive_grows_in_seq_order(tmp_path: Path) -> None:
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048).public_key()
    fake = fake_sdk.FakeArchive(tmp_path, tmp_path / "unused.so", "secret")
    fake.serve([])
    fake.append(fake_sdk.seal({"msgid": "m1"}, 1, key))
    with pytest.raises(ValueError, match="seq 1 is not past"):
        fake.append(fake_sdk.seal({"msgid": "again"}, 1, key))
    assert fake.last_seq == 1
    assert (tmp_path / "chatdata.jsonl").read_text().count("\n") == 1

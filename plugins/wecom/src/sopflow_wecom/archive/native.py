"""A ctypes binding of WeCom's Finance SDK (``libWeWorkFinanceSdk_C``), the only way
WeCom hands out the conversation archive.

Why our own binding and not ``pyweworkfinance``'s wrapper: the package is the
well-kept carrier of Tencent's library (``sopflow-wecom[archive]`` installs it
for the ``.so`` files it ships), but its wrapper logs the corp secret and the
proxy password at DEBUG, raises one error type for every code, and loads only
its own copy.  Here the library is loaded from ``SOPFLOW_WECOM_ARCHIVE_LIBRARY``
when set (a deployment on Tencent's newer build), else from the package, and
nothing is logged but return codes.  The signatures follow the header
``WeWorkFinanceSdk_C.h`` exactly; the C fake in the tests implements the same
ABI, so this code path is the one production runs.
"""

from __future__ import annotations

import ctypes
import importlib.util
import os
import platform
import threading
from collections.abc import Callable
from ctypes import POINTER, c_char_p, c_int, c_uint, c_ulonglong, c_void_p
from pathlib import Path

import attrs
from sopflow_sdk import ConfigError, Secret

from sopflow_wecom.archive.errors import FinanceSdkError

#: The setting that points at another build of the library.
LIBRARY_ENV = "SOPFLOW_WECOM_ARCHIVE_LIBRARY"
#: The optional dependency that ships Tencent's library.
EXTRA = "sopflow-wecom[archive]"
_SHIPPED = {"x86_64": "libWeWorkFinanceSdk_C_x86.so", "amd64": "libWeWorkFinanceSdk_C_x86.so"}
_SHIPPED |= {"aarch64": "libWeWorkFinanceSdk_C_arm.so", "arm64": "libWeWorkFinanceSdk_C_arm.so"}


class _MediaData(ctypes.Structure):
    _fields_ = [
        ("outindexbuf", c_char_p),
        ("out_len", c_int),
        ("data", c_void_p),
        ("data_len", c_int),
        ("is_finish", c_int),
    ]


def shipped_library() -> Path | None:
    """The library ``pyweworkfinance`` ships for this machine, found without
    importing the package (its import sets up its own logger)."""
    spec = importlib.util.find_spec("pyweworkfinance")
    name = _SHIPPED.get(platform.machine().lower())
    if spec is None or not spec.submodule_search_locations or name is None:
        return None
    path = Path(next(iter(spec.submodule_search_locations))) / "libs" / "linux" / name
    return path if path.is_file() else None


def library_path() -> Path:
    """Where the Finance SDK is loaded from, or a ``ConfigError`` saying how to get it."""
    configured = os.environ.get(LIBRARY_ENV, "").strip()
    if configured:
        path = Path(configured)
        if not path.is_file():
            raise ConfigError(
                [
                    (
                        LIBRARY_ENV,
                        f"no file at {configured}: point it at libWeWorkFinanceSdk_C.so, or unset it",
                    )
                ],
                subject="WeCom conversation archive",
            )
        return path
    shipped = shipped_library()
    if shipped is None:
        raise ConfigError(
            [
                (
                    LIBRARY_ENV,
                    f"WeCom's Finance SDK library was not found: install the extra `{EXTRA}` "
                    f"(Linux x86-64 or ARM), or set {LIBRARY_ENV} to the .so file",
                )
            ],
            subject="WeCom conversation archive",
        )
    return shipped


_loaded: dict[str, ctypes.CDLL] = {}
_load_lock = threading.Lock()


def load(path: Path | None = None) -> ctypes.CDLL:
    """The library at ``path`` (default ``library_path()``), signatures declared, loaded once."""
    path = path or library_path()
    key = str(path.resolve())
    with _load_lock:
        if key not in _loaded:
            try:
                lib = ctypes.CDLL(key)
            except OSError as exc:
                raise ConfigError(
                    [(LIBRARY_ENV, f"{key} does not load ({exc}); point it at a Linux build of the SDK")],
                    subject="WeCom conversation archive",
                ) from None
            _declare(lib)
            _loaded[key] = lib
        return _loaded[key]


def _declare(lib: ctypes.CDLL) -> None:
    """The argument and result types of every function in ``WeWorkFinanceSdk_C.h``."""
    slice_p, media_p = c_void_p, POINTER(_MediaData)
    lib.NewSdk.argtypes, lib.NewSdk.restype = [], c_void_p
    lib.Init.argtypes, lib.Init.restype = [c_void_p, c_char_p, c_char_p], c_int
    lib.GetChatData.argtypes = [c_void_p, c_ulonglong, c_uint, c_char_p, c_char_p, c_int, slice_p]
    lib.GetChatData.restype = c_int
    lib.DecryptData.argtypes, lib.DecryptData.restype = [c_char_p, c_char_p, slice_p], c_int
    lib.GetMediaData.argtypes = [c_void_p, c_char_p, c_char_p, c_char_p, c_char_p, c_int, media_p]
    lib.GetMediaData.restype = c_int
    lib.DestroySdk.argtypes, lib.DestroySdk.restype = [c_void_p], None
    lib.NewSlice.argtypes, lib.NewSlice.restype = [], slice_p
    lib.FreeSlice.argtypes, lib.FreeSlice.restype = [slice_p], None
    lib.GetContentFromSlice.argtypes, lib.GetContentFromSlice.restype = [slice_p], c_void_p
    lib.GetSliceLen.argtypes, lib.GetSliceLen.restype = [slice_p], c_int
    lib.NewMediaData.argtypes, lib.NewMediaData.restype = [], media_p
    lib.FreeMediaData.argtypes, lib.FreeMediaData.restype = [media_p], None
    lib.GetOutIndexBuf.argtypes, lib.GetOutIndexBuf.restype = [media_p], c_void_p
    lib.GetData.argtypes, lib.GetData.restype = [media_p], c_void_p
    lib.GetIndexLen.argtypes, lib.GetIndexLen.restype = [media_p], c_int
    lib.GetDataLen.argtypes, lib.GetDataLen.restype = [media_p], c_int
    lib.IsMediaDataFinish.argtypes, lib.IsMediaDataFinish.restype = [media_p], c_int


@attrs.frozen
class MediaChunk:
    """One ``GetMediaData`` answer: the bytes, the index for the next call, whether done."""

    data: bytes
    next_index: str
    finished: bool


class FinanceSdk:
    """One ``NewSdk``/``Init`` handle for a corp; ``close()`` (or ``with``) destroys it.

    Every call returns bytes or raises ``FinanceSdkError`` with the library's code;
    the secret is handed to ``Init`` only and never kept in a string we log."""

    def __init__(
        self, corp_id: str, secret: Secret, *, library: Path | None = None, timeout: int = 5
    ) -> None:
        self._lib = load(library)
        self.timeout = timeout
        self._sdk = self._lib.NewSdk()
        if not self._sdk:
            raise FinanceSdkError(10003, "NewSdk")
        code = self._lib.Init(self._sdk, corp_id.encode(), secret.reveal().encode())
        if code != 0:
            self.close()
            raise FinanceSdkError(code, "Init")

    def __enter__(self) -> FinanceSdk:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self._sdk:
            self._lib.DestroySdk(self._sdk)
            self._sdk = None

    def _slice_call(self, name: str, fn: Callable[..., int], *args: object) -> bytes:
        out = self._lib.NewSlice()
        try:
            code = fn(*args, out)
            if code != 0:
                raise FinanceSdkError(code, name)
            buf, size = self._lib.GetContentFromSlice(out), self._lib.GetSliceLen(out)
            return ctypes.string_at(buf, size) if buf and size > 0 else b""
        finally:
            self._lib.FreeSlice(out)

    def get_chat_data(self, seq: int, limit: int, proxy: str = "", passwd: str = "") -> bytes:
        """The JSON ``GetChatData`` returns for messages after ``seq`` (1..1000 of them)."""
        return self._slice_call(
            "GetChatData",
            self._lib.GetChatData,
            self._sdk,
            c_ulonglong(seq),
            c_uint(limit),
            proxy.encode(),
            passwd.encode(),
            c_int(self.timeout),
        )

    def decrypt_data(self, random_key: bytes, encrypt_msg: str) -> bytes:
        """``DecryptData``: the plaintext JSON of one message, given its RSA-decrypted key."""
        return self._slice_call("DecryptData", self._lib.DecryptData, random_key, encrypt_msg.encode())

    def get_media_data(
        self, sdkfileid: str, index: str = "", proxy: str = "", passwd: str = ""
    ) -> MediaChunk:
        """One page of a media file; pass ``next_index`` back until ``finished``."""
        media = self._lib.NewMediaData()
        try:
            code = self._lib.GetMediaData(
                self._sdk,
                index.encode(),
                sdkfileid.encode(),
                proxy.encode(),
                passwd.encode(),
                c_int(self.timeout),
                media,
            )
            if code != 0:
                raise FinanceSdkError(code, "GetMediaData")
            data, size = self._lib.GetData(media), self._lib.GetDataLen(media)
            idx, idx_len = self._lib.GetOutIndexBuf(media), self._lib.GetIndexLen(media)
            return MediaChunk(
                data=ctypes.string_at(data, size) if data and size > 0 else b"",
                next_index=ctypes.string_at(idx, idx_len).decode() if idx and idx_len > 0 else "",
                finished=bool(self._lib.IsMediaDataFinish(media)),
            )
        finally:
            self._lib.FreeMediaData(media)

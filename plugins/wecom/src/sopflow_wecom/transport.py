"""One WeCom HTTP call, mapped onto sopflow's error tree.

WeCom answers HTTP 200 with ``{"errcode": ..}``; what the engine needs to know
is whether to retry, skip or give up, and whether a send may already have
reached the customer.  This module holds that mapping and the redaction of
``access_token``/``corpsecret`` query parameters, which httpx would otherwise
carry into exception texts and log lines.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from typing import Any

import httpx
from sopflow_sdk import AmbiguousSendError, FatalError, RetriableError, SkippableError

_SENSITIVE_PARAM = re.compile(r"(access_token|corpsecret)=[^&\s'\"<>]*", re.IGNORECASE)

#: errcodes meaning the access_token is bad: invalidate and retry once.
TOKEN_ERRCODES = frozenset({40001, 40014, 42001})
#: errcodes worth retrying, with the wait WeCom's penalty windows suggest.
RETRY_AFTER: Mapping[int, float] = {-1: 1.0, 45009: 60.0, 45033: 1.0, 41096: 1.0}
#: errcodes that make this item pointless to retry: record and move on.
SKIPPABLE: Mapping[int, str] = {
    41051: "the customer is already chatting or the welcome message was already sent",
    40003: "invalid userid",
    40096: "invalid external userid",
    60111: "userid not found",
    84061: "no contact relationship between this member and customer",
    # message/send when no recipient is valid (document 90236): the member is not in
    # the app's visible range or has left; 82001 is the code's former number
    81013: "no recipient of the app message is a member the app can reach",
    82001: "no recipient of the app message is a member the app can reach",
}


def redact_url(text: str) -> str:
    """Mask ``access_token=`` and ``corpsecret=`` values in ``text``."""
    return _SENSITIVE_PARAM.sub(r"\1=***", text)


class _RedactingFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact_url(message)
        if cleaned != message:
            record.msg, record.args = cleaned, ()
        return True


def install_log_redaction() -> None:
    """httpx logs every request URL at INFO; mask tokens there (idempotent)."""
    for name in ("httpx", "httpcore"):
        logger = logging.getLogger(name)
        if not any(isinstance(f, _RedactingFilter) for f in logger.filters):
            logger.addFilter(_RedactingFilter())


class WeComApiError:
    """Mixin: the WeCom ``errcode`` behind an error (``None`` for transport errors)."""

    errcode: int | None = None


class WeComRetriableError(RetriableError, WeComApiError):
    pass


class WeComSkippableError(SkippableError, WeComApiError):
    pass


class WeComFatalError(FatalError, WeComApiError):
    pass


def check_errcode(path: str, data: Mapping[str, Any]) -> Mapping[str, Any]:
    """Return ``data`` if ``errcode`` is 0, else raise the mapped error."""
    try:
        code = int(data.get("errcode", 0))
    except (TypeError, ValueError):
        code = -1
    if code == 0:
        return data
    errmsg = redact_url(str(data.get("errmsg", "")))[:300]
    detail = f"WeCom {path} failed: errcode {code} ({errmsg})"
    err: WeComApiError
    if code in RETRY_AFTER:
        err = WeComRetriableError(detail, retry_after=RETRY_AFTER[code])
    elif code in SKIPPABLE:
        err = WeComSkippableError(f"{detail}: {SKIPPABLE[code]}")
    elif path == "gettoken":
        err = WeComFatalError(
            f"{detail}: WeCom refused the corp id or app secret; copy both again from the "
            "admin console (the secret of the self-built app, not of the 客户联系 system app)"
        )
    elif code in TOKEN_ERRCODES:
        err = WeComFatalError(
            f"{detail}: the access token was refused twice; check the corp id and that the "
            "app secret belongs to a self-built app in 客户联系 → 可调用接口的应用"
        )
    else:
        err = WeComFatalError(detail)
    err.errcode = code
    raise err  # type: ignore[misc]


def send_request(
    http: httpx.Client, method: str, url: str, *, params: Mapping[str, Any], json: Any, path: str, send: bool
) -> Mapping[str, Any]:
    """Issue one request and return the decoded JSON body.

    ``send`` marks calls that deliver something to a person: after the request
    may have left, a timeout or broken connection is ambiguous for them.
    """
    what = f"WeCom {path}"
    try:
        response = http.request(method, url, params=params, json=json)
    except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as exc:
        raise WeComRetriableError(
            f"{what}: could not connect ({type(exc).__name__})", retry_after=5.0
        ) from None
    except httpx.TransportError as exc:
        internal = f"{what}: {type(exc).__name__}: {redact_url(str(exc))}"
        if send:
            raise AmbiguousSendError(
                f"{what}: no answer after the request was sent ({type(exc).__name__}); "
                "it may or may not have been delivered",
                internal_message=internal,
            ) from None
        raise WeComRetriableError(
            f"{what}: no answer ({type(exc).__name__})", retry_after=5.0, internal_message=internal
        ) from None
    if response.status_code >= 500:
        if send:
            raise AmbiguousSendError(f"{what}: HTTP {response.status_code} after sending")
        raise WeComRetriableError(f"{what}: HTTP {response.status_code}", retry_after=5.0)
    if response.status_code != 200:
        raise WeComFatalError(f"{what}: unexpected HTTP {response.status_code}")
    try:
        data = response.json()
    except ValueError:
        if send:
            raise AmbiguousSendError(f"{what}: answer is not JSON") from None
        raise WeComRetriableError(f"{what}: answer is not JSON", retry_after=5.0) from None
    if not isinstance(data, dict):
        raise WeComFatalError(f"{what}: answer is not a JSON object")
    return data

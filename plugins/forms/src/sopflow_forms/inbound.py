"""What every webhook receiver here shares: the body limit, the problem answer
(RFC 9457, ``application/problem+json``) and the rejection log line.

A rejection is logged with the provider and the reason only: the reason strings
are written here, never built from a secret or a signature the caller sent.
"""

from __future__ import annotations

import hmac
import json
import logging
from typing import Any

from sopflow_sdk import InboundRequest, InboundResponse

log = logging.getLogger("sopflow_forms")

#: Provider pushes are small JSON documents; anything larger is refused unread.
MAX_BODY = 256 * 1024

PROBLEM_JSON = "application/problem+json"
TITLES = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    413: "Content Too Large",
}


class Rejected(Exception):
    """The request is refused; ``status`` and ``reason`` go into the problem body and the log."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


def problem(status: int, detail: str) -> InboundResponse:
    body = {"type": "about:blank", "title": TITLES.get(status, "Error"), "status": status, "detail": detail}
    return InboundResponse(status=status, body=json.dumps(body, ensure_ascii=False), media_type=PROBLEM_JSON)


def reject(provider: str, exc: Rejected, request: InboundRequest) -> InboundResponse:
    """Log the rejection (provider, reason, path) and answer with a problem body."""
    log.warning(
        "inbound_rejected provider=%s status=%s reason=%s path=%s",
        provider,
        exc.status,
        exc.reason,
        request.path,
    )
    return problem(exc.status, exc.reason)


def json_ok(body: Any, status: int = 200) -> InboundResponse:
    return InboundResponse(
        status=status, body=json.dumps(body, ensure_ascii=False), media_type="application/json"
    )


def check_size(request: InboundRequest, limit: int = MAX_BODY) -> None:
    if len(request.body) > limit:
        raise Rejected(413, f"the body is larger than {limit} bytes")


def header(request: InboundRequest, name: str) -> str:
    """A request header, case-insensitively (the ASGI layer lower-cases them)."""
    wanted = name.lower()
    for k, v in request.headers.items():
        if k.lower() == wanted:
            return v
    return ""


def same(expected: str, given: str) -> bool:
    """Constant-time comparison of two signatures (hex digests compare case-insensitively)."""
    return hmac.compare_digest(expected.lower().encode(), given.strip().lower().encode())


def parse_json(body: bytes) -> dict[str, Any]:
    try:
        doc = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise Rejected(400, "the body is not JSON") from exc
    if not isinstance(doc, dict):
        raise Rejected(400, "the body is not a JSON object")
    return doc


def account_for(host: Any, request: InboundRequest, channel: str) -> Any:
    """The source account named by the route's ``account_id``, of the right kind."""
    try:
        account_id = int(request.path_params.get("account_id", ""))
    except ValueError:
        raise Rejected(404, f"unknown {channel} account") from None
    account = host.channel_account(account_id)
    if account is None or account.channel != channel:
        raise Rejected(404, f"unknown {channel} account")
    return account


def secret_value(account: Any, name: str) -> str:
    """A secret setting's plain value (``sopflow_sdk.Secret`` or a str in stubs)."""
    value = account.secrets.get(name)
    if value is None:
        return ""
    reveal = getattr(value, "reveal", None) or getattr(value, "get_secret_value", None)
    return str(reveal() if reveal else value)

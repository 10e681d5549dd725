"""The Finance SDK's return codes and the archive server's ``errcode`` values, each
mapped to sopflow's error tree.

- **retriable** (``RetriableError``): the network, a timeout, a busy server — the
  pull stops, the cursor stays, the next run reads the same messages again;
- **fatal** (``FatalError``): a wrong secret or certificate, the server's IP not on
  the whitelist, a private key missing for a ``publickey_ver`` — retrying cannot
  help: the account is marked unhealthy and is only probed, on a backoff,
  until the cause is fixed (``job.probe_delay``);
- **skippable** (``SkippableError``): one message whose key or body cannot be
  decrypted — it is recorded and passed over; it never blocks the cursor.

Codes from ``WeWorkFinanceSdk_C.h`` (10000–10011) and WeCom's error-code page.
"""

from __future__ import annotations

from sopflow_sdk import FatalError, RetriableError, SkippableError, SopflowError

#: code → (kind, what it means, what to do)
CODES: dict[int, tuple[str, str, str]] = {
    10000: ("fatal", "parameter error", "check config.corp_id and the limit (1..1000)"),
    10001: ("retriable", "network error", "the next pull retries; check the server's outbound access"),
    10002: ("retriable", "data parse failure", "the next pull retries"),
    10003: ("retriable", "system failure", "the next pull retries"),
    10004: (
        "fatal",
        "encryption failed: wrong secret",
        "set secrets.archive_secret to the Secret under 管理工具 → 会话内容存档",
    ),
    10005: ("skippable", "sdkfileid error", "the media is recorded without its content"),
    10006: ("skippable", "decryption failed", "the message is recorded as skipped"),
    10007: (
        "fatal",
        "no private key for the message's key version",
        "add the private key of that publickey_ver to secrets.archive_private_keys",
    ),
    10008: ("skippable", "encrypt_key could not be parsed", "the message is recorded as skipped"),
    10009: ("fatal", "IP not allowed", "add this server's IP to the archive's trusted IPs (可信IP)"),
    10010: ("skippable", "data expired", "the message (or media) is past WeCom's retention"),
    10011: ("fatal", "certificate error", "check the public key uploaded in the admin console"),
    # The server's errcode, inside GetChatData's JSON.
    -1: ("retriable", "system busy", "the next pull retries"),
    40001: ("fatal", "invalid secret", "set secrets.archive_secret to the archive's Secret"),
    41001: ("fatal", "missing access token", "set secrets.archive_secret to the archive's Secret"),
    45009: ("retriable", "API frequency limit", "the next pull retries"),
    301042: (
        "fatal",
        "IP not whitelisted (get chatdata whiteip not match)",
        "add this server's public IP to the archive's trusted IPs (可信IP) in the admin console",
    ),
    301052: ("fatal", "the archive service has expired", "renew 会话内容存档 in the admin console"),
}
_KINDS: dict[str, type[SopflowError]] = {
    "retriable": RetriableError,
    "fatal": FatalError,
    "skippable": SkippableError,
}


class FinanceSdkError(Exception):
    """A non-zero code from a Finance SDK call (``call`` names it) or the server."""

    def __init__(self, code: int, call: str) -> None:
        self.code, self.call = code, call
        kind, meaning, _ = CODES.get(code, ("retriable", "unknown error", ""))
        super().__init__(f"{call} returned {code}: {meaning}")
        self.kind = kind


def kind_of(code: int) -> str:
    """``retriable``, ``fatal`` or ``skippable``; an unknown code is retriable (logged with
    its number), so a new transient code never marks an account unhealthy."""
    return CODES.get(code, ("retriable", "", ""))[0]


def to_sopflow_error(code: int, call: str, subject: str = "") -> SopflowError:
    """The error of the tree for ``code``, its message naming the code and the fix."""
    kind, meaning, fix = CODES.get(code, ("retriable", "unknown error", "the next pull retries"))
    where = f"{subject}: " if subject else ""
    message = f"{where}{call} returned {code} ({meaning}); {fix}"
    error = _KINDS[kind](message)
    error.code = code  # type: ignore[attr-defined]
    return error

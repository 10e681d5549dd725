"""A personal WeChat account's settings, checked by core when the account is connected.

``POST /api/v1/channel-accounts`` answers 422 naming the field for a malformed
endpoint or token, so nothing is half-created and nothing fails at first use.
Pacing settings default to the documented values (``pacing.py``,
docs/plugins/personal-wechat.md says why each one is what it is).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sopflow_sdk import ConfigError, Setting, SettingsSchema

ADAPTERS = ("wechaty", "wcferry")
#: host:port, host a name, IPv4 or [IPv6]; port 1-65535 checked by ``endpoint``.
ENDPOINT_PATTERN = r"(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9]([A-Za-z0-9.-]{0,251}[A-Za-z0-9])?):[0-9]{1,5}"


class GatewaySettings(SettingsSchema):
    """The declared settings plus what one setting cannot say alone: the endpoint's
    port range, and that a Wechaty puppet service needs its token.  Core runs this
    when an account is saved, so a missing token is a 422 then, not a failure later."""

    def check(  # type: ignore[override]
        self, config: Mapping[str, Any], secrets: Mapping[str, Any] | None = None, **kwargs: Any
    ) -> tuple[dict[str, Any], list[tuple[str, str]]]:
        filled, problems = super().check(config, secrets, **kwargs)
        if not any(f.endswith(".endpoint") for f, _ in problems) and filled.get("endpoint"):
            try:
                endpoint(filled)
            except ConfigError as exc:
                problems.extend(exc.problems)
        if secrets is not None and filled.get("adapter") in ("wechaty", None):
            token = secrets.get("token")
            if not (token.reveal() if hasattr(token, "reveal") else token):
                path = f"{kwargs.get('secrets_path', 'secrets')}.token"
                problems.append((path, "required with adapter wechaty: the puppet service token (a secret)"))
        return filled, problems


SETTINGS = GatewaySettings(
    Setting(
        "adapter",
        required=True,
        choices=ADAPTERS,
        example="wechaty",
        description="the gateway: a Wechaty puppet service (gRPC) or a WeChatFerry endpoint",
    ),
    Setting(
        "endpoint",
        required=True,
        pattern=ENDPOINT_PATTERN,
        example="127.0.0.1:8788",
        description="host:port of the gateway (WECHATY_PUPPET_SERVICE_ENDPOINT; WeChatFerry's command port)",
    ),
    Setting(
        "tls",
        "boolean",
        default=True,
        description="TLS to the puppet service; false is Wechaty's documented "
        "WECHATY_PUPPET_SERVICE_NO_SSL_UNSAFE_CLIENT (only on a private network)",
    ),
    Setting(
        "auto_accept_friends",
        "boolean",
        default=True,
        description="accept friend requests (paced, within the daily friends cap)",
    ),
    Setting(
        "min_gap_seconds",
        "integer",
        default=20,
        minimum=3,
        maximum=3600,
        description="the least time between two sends of this account",
    ),
    Setting(
        "jitter_seconds",
        "integer",
        default=25,
        minimum=0,
        maximum=3600,
        description="a random extra wait, up to this, added to every gap",
    ),
    Setting(
        "daily_messages",
        "integer",
        default=300,
        minimum=1,
        maximum=5000,
        description="private messages a day (after the warm-up)",
    ),
    Setting(
        "daily_friends",
        "integer",
        default=30,
        minimum=0,
        maximum=500,
        description="friend requests accepted a day",
    ),
    Setting(
        "daily_group_sends",
        "integer",
        default=50,
        minimum=0,
        maximum=1000,
        description="group messages a day",
    ),
    Setting("daily_moments", "integer", default=3, minimum=0, maximum=50, description="moments a day"),
    Setting(
        "quiet_start",
        "integer",
        default=22,
        minimum=0,
        maximum=23,
        description="hour (account's time zone) from which nothing is sent",
    ),
    Setting(
        "quiet_end", "integer", default=8, minimum=0, maximum=23, description="hour at which sending resumes"
    ),
    Setting(
        "utc_offset_hours",
        "integer",
        default=8,
        minimum=-12,
        maximum=14,
        description="the account's time zone for quiet hours and days (China: +8)",
    ),
    Setting(
        "warmup_days",
        "integer",
        default=7,
        minimum=0,
        maximum=60,
        description="days after connecting on which the daily caps ramp up",
    ),
    Setting(
        "restriction_backoff_minutes",
        "integer",
        default=240,
        minimum=5,
        maximum=10080,
        description="how long the account pauses after the platform restricts it",
    ),
    Setting(
        "notify_staff",
        min_length=1,
        max_length=64,
        description="who is told when the platform restricts the account: the staff member's id on "
        "notify_channel (a WeCom userid); unset, the restriction shows only on the health page and in logs",
    ),
    Setting(
        "notify_channel",
        default="wecom",
        min_length=1,
        max_length=50,
        pattern=r"[a-z][a-z0-9_]*",
        description="the channel that carries the notice to notify_staff (WeCom: an app message)",
    ),
    Setting(
        "self_wxid",
        min_length=1,
        max_length=64,
        pattern=r"[A-Za-z0-9_\-@.]+",
        description="the account's own wxid, the customers' staff id, for a gateway whose stream does not "
        "name the logged-in account",
    ),
    Setting(
        "token",
        secret=True,
        min_length=8,
        max_length=256,
        pattern=r"[A-Za-z0-9_:.\-]+",
        description="the puppet service token (WECHATY_PUPPET_SERVICE_TOKEN); WeChatFerry needs none",
    ),
)


def endpoint(config: Mapping[str, Any]) -> tuple[str, int]:
    """``config.endpoint`` as (host, port), or a ``ConfigError`` naming it."""
    raw = str(config.get("endpoint") or "")
    host, _, port = raw.rpartition(":")
    if not host or not port.isdigit() or not 1 <= int(port) <= 65535:
        raise ConfigError(
            [("config.endpoint", "give host:port with a port from 1 to 65535")],
            subject="personal WeChat account",
        )
    return host.strip("[]"), int(port)


def check(config: Mapping[str, Any], secrets: Mapping[str, Any]) -> dict[str, Any]:
    """The config with defaults filled in, or one ``ConfigError`` with every problem
    (the factory's own check: a channel built outside core is checked the same way)."""
    filled, problems = SETTINGS.check(config, secrets)
    if problems:
        raise ConfigError(problems, subject="personal WeChat account")
    return filled

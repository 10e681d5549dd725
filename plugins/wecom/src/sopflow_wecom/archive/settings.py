"""The channel account's archive settings, part of the WeCom channel's settings
schema (``channel.WECOM_SETTINGS``)."""

from __future__ import annotations

from sopflow_sdk import Setting

#: The pull job looks at the accounts this often; each account's own interval
#: (``archive_pull_seconds``) decides whether it is pulled on a tick.
TICK_SECONDS = 10.0
DEFAULT_PULL_SECONDS = 60
#: An unhealthy account is probed this long after it turned unhealthy, the wait
#: doubling after each failed probe up to ``PROBE_MAX_SECONDS``.
PROBE_FIRST_SECONDS = 300
PROBE_MAX_SECONDS = 3600

ARCHIVE_SETTINGS = (
    Setting(
        "archive_enabled",
        "boolean",
        default=False,
        description="pull this corp's conversation archive (会话内容存档) into sopflow",
    ),
    Setting(
        "archive_pull_seconds",
        "integer",
        minimum=10,
        maximum=86_400,
        default=DEFAULT_PULL_SECONDS,
        description="seconds between two archive pulls of this account",
    ),
    Setting(
        "archive_fetch_media",
        "boolean",
        default=False,
        description="also download images and files with GetMediaData (else only their metadata)",
    ),
    Setting(
        "archive_require_consent",
        "boolean",
        default=False,
        description="ingest a customer's archived messages only after their agree (同意存档) message",
    ),
    Setting(
        "archive_alert_staff",
        pattern=r"[A-Za-z0-9_.@-]{1,64}(\|[A-Za-z0-9_.@-]{1,64}){0,99}",
        example="zhangsan|lisi",
        description="members (userids, '|' between) told by app message when the archive stops "
        "and when it works again; needs agent_id",
    ),
    Setting(
        "archive_secret",
        secret=True,
        max_length=128,
        description="the Secret under 管理工具 → 会话内容存档 (not the app's secret)",
    ),
    Setting(
        "archive_private_keys",
        secret=True,
        max_length=65_536,
        description='the RSA private keys by publickey_ver, as JSON: {"1": "-----BEGIN PRIVATE KEY-----…"}; '
        "keep old versions after a rotation",
    ),
)

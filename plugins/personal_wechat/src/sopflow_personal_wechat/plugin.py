"""The sopflow entry point for personal WeChat: hook implementations only.

A personal WeChat channel account carries ``config = {"adapter": "wechaty",
"endpoint": "host:port", "tls": ..., pacing settings...}`` and ``secrets =
{"token": ...}`` (``settings.SETTINGS``).  The intake job reads the gateway's
event stream for an account (``sopflow`` runs it every ``INTAKE_EVERY``
seconds; each run reads until the stream is idle).
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Callable
from typing import Any

from sopflow_sdk import (
    ChannelAccountView,
    ChannelSpec,
    Host,
    JobSpec,
    RouteSpec,
    Secret,
    TriggerSpec,
    hookimpl,
)

from sopflow_personal_wechat import intake, store
from sopflow_personal_wechat.channel import CHANNEL, PersonalWeChatChannel
from sopflow_personal_wechat.health import account_health
from sopflow_personal_wechat.settings import SETTINGS

INTAKE_JOB = "personal_wechat.intake"
INTAKE_EVERY = 15.0

_live: dict[tuple[int, str], PersonalWeChatChannel] = {}
_guard = threading.Lock()


def account_channel(account: ChannelAccountView, host: Host | None = None) -> PersonalWeChatChannel:
    """One live channel per account and version of its settings (shared gateway connection)."""
    revealed = {k: v.reveal() if isinstance(v, Secret) else v for k, v in account.secrets.items()}
    fingerprint = hashlib.sha256(
        json.dumps([dict(account.config), revealed], sort_keys=True).encode()
    ).hexdigest()
    with _guard:
        channel = _live.get((account.id, fingerprint))
        if channel is None:
            for stale in [k for k in _live if k[0] == account.id]:
                del _live[stale]
            clock = (lambda: host.now().timestamp()) if host is not None else None
            channel = PersonalWeChatChannel(account.config, account.secrets, clock=clock)
            _live[account.id, fingerprint] = channel
        return channel


def run_intake(host: Host, account_id: int | None = None) -> int:
    """Read every (or one) personal WeChat account's events into sopflow."""
    done = 0
    for account in host.channel_accounts(CHANNEL):
        if account_id is None or account.id == account_id:
            done += intake.run(host, account, account_channel(account, host))
    return done


@hookimpl
def register_channels(register: Callable[[Any], None]) -> None:
    register(
        ChannelSpec(
            name=CHANNEL,
            factory=PersonalWeChatChannel,
            settings=SETTINGS,
            context=True,
            description="Personal WeChat (个人号) through a gateway: private and group messages, "
            "moments where the gateway can post them, ban-safe pacing",
        )
    )


@hookimpl
def register_triggers(register: Callable[[Any], None]) -> None:
    register(
        TriggerSpec(
            event_type=intake.GROUP_JOINED,
            description="A contact joined a WeChat group (room)",
            payload_schema={"type": "object"},
        )
    )


@hookimpl
def register_routes(register: Callable[[Any], None]) -> None:
    register(
        RouteSpec(
            path="accounts/{account_id:int}",
            handler=account_health,
            methods=("GET",),
            description="A personal WeChat account's health: login state, QR URL, last heartbeat, "
            "pause, today's counts against each cap (admin key)",
        )
    )


@hookimpl
def register_jobs(register: Callable[[Any], None]) -> None:
    register(
        JobSpec(
            name=INTAKE_JOB,
            fn=run_intake,
            every_seconds=INTAKE_EVERY,
            description="Read the gateways' event streams: friend requests, messages, room joins, "
            "login and heartbeat",
        )
    )


@hookimpl
def register_migrations(register: Callable[[Any], None]) -> None:
    register(store.migrations_spec())

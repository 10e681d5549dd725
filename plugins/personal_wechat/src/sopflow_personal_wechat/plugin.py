"""The sopflow entry point for personal WeChat: hook implementations only.

A personal WeChat channel account carries ``config = {"adapter": "wechaty",
"endpoint": "host:port", "tls": ..., pacing settings...}`` and ``secrets =
{"token": ...}`` (``settings.SETTINGS``).  The intake job reads the gateway's
event stream for an account (``sopflow`` runs it every ``INTAKE_EVERY``
seconds; each run reads until the stream is idle); each worker process also
runs ``listeners.run_listeners``, which keeps the stream of every logged-in
account open and handles its events as they come.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sopflow_sdk import (
    ChannelSpec,
    JobSpec,
    RouteSpec,
    TriggerSpec,
    WorkerServiceSpec,
    hookimpl,
)

from sopflow_personal_wechat import console_panel, intake, listeners, store
from sopflow_personal_wechat.accounts import account_health, intake_route, run_intake
from sopflow_personal_wechat.channel import CHANNEL, PersonalWeChatChannel
from sopflow_personal_wechat.settings import SETTINGS

INTAKE_JOB = "personal_wechat.intake"
#: seconds between intake runs: a friend request waits at most this long for its greeting
INTAKE_EVERY = 15.0


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
    register(
        TriggerSpec(
            event_type=intake.GROUP_LEFT,
            description="A contact left a WeChat group (room): removed (payload.remover) or quit; "
            "payload.room_id",
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
    register(
        RouteSpec(
            path="accounts/{account_id:int}/intake",
            handler=intake_route,
            methods=("POST",),
            description="Read the account's gateway events now: friend requests, messages, "
            "room joins and leaves, login and heartbeat (admin key)",
        )
    )


@hookimpl
def register_jobs(register: Callable[[Any], None]) -> None:
    register(
        JobSpec(
            name=INTAKE_JOB,
            fn=run_intake,
            every_seconds=INTAKE_EVERY,
            description="Read the gateways' event streams: friend requests, messages, "
            "room joins and leaves, login and heartbeat",
        )
    )


@hookimpl
def register_worker_services(register: Callable[[Any], None]) -> None:
    register(
        WorkerServiceSpec(
            name="personal_wechat.listeners",
            run=listeners.run_listeners,
            description="One event-stream listener per logged-in account: events as they come",
        )
    )


@hookimpl
def register_migrations(register: Callable[[Any], None]) -> None:
    register(store.migrations_spec())


@hookimpl
def register_console_pages(register: Callable[[Any], None]) -> None:
    for page in console_panel.console_pages():
        register(page)

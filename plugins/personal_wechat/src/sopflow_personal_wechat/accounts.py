"""Live channels per account for the plugin's routes and jobs, and the intake entry points.

The engine builds its own channel for sends (with ``ChannelContext``); routes
and jobs share one per account here, on the host's database and clock, so
both read and write the same pacing row.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading

from sopflow_sdk import ChannelAccountView, Host, InboundRequest, InboundResponse, Secret, SopflowError

from sopflow_personal_wechat import intake, metrics, notices
from sopflow_personal_wechat.channel import CHANNEL, PersonalWeChatChannel
from sopflow_personal_wechat.health import admin_account, json_response, report
from sopflow_personal_wechat.pacing import Pacer

log = logging.getLogger("sopflow_personal_wechat")

#: seconds the intake waits for one more event before it ends a run
IDLE_SECONDS = 1.0

_live: dict[tuple[int, str], PersonalWeChatChannel] = {}
#: how long a channel replaced by new settings keeps its gateway connection open
STALE_GRACE_SECONDS = 60.0
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
                _close_later(_live.pop(stale))
            channel = PersonalWeChatChannel(account.config, account.secrets, pacer=_pacer(account, host))
            _live[account.id, fingerprint] = channel
        return channel


def _close_later(channel: PersonalWeChatChannel) -> None:
    """Close a replaced channel's gateway connection once what may still use it is
    done: a send in flight ends within its timeout, and the account's listener
    stops within seconds of a settings change (``listeners``)."""
    timer = threading.Timer(STALE_GRACE_SECONDS, channel.gateway.close)
    timer.daemon = True
    timer.start()


def _pacer(account: ChannelAccountView, host: Host | None) -> Pacer | None:
    """The pacing on the host's own database, on the host's clock (the engine's)."""
    if host is None:
        return None
    with host.transaction(account.tenant_id) as tx:
        engine = tx.connection.engine
    metrics.watch(engine)  # this process's /metrics reports every account's pacing row
    return Pacer(engine, lambda: host.now().timestamp())


def intake_route(request: InboundRequest, host: Host) -> InboundResponse:
    """Read one account's gateway events now (what the periodic job does)."""
    account, error = admin_account(request, host)
    if error is not None:
        return error
    try:
        idle = float(request.query.get("idle_seconds", IDLE_SECONDS))
    except ValueError:
        idle = -1.0
    if not 0.05 <= idle <= 10:
        detail = "idle_seconds: how long to wait for one more event, from 0.05 to 10"
        return json_response(422, {"title": "Unprocessable Entity", "detail": detail})
    try:
        ingested = intake.run(host, account, account_channel(account, host), idle_timeout=idle)
    except SopflowError as exc:  # the gateway: unreachable, token refused, settings wrong
        return json_response(502, {"title": "Bad Gateway", "detail": exc.user_message})
    return json_response(200, {"id": account.id, "ingested": ingested})


def run_intake(host: Host, account_id: int | None = None) -> int:
    """Read every (or one) personal WeChat account's events into sopflow; a periodic
    run leaves out the accounts this process's listeners read as events come."""
    from sopflow_personal_wechat.listeners import listening  # it imports this module

    done = 0
    for account in host.channel_accounts(CHANNEL):
        if account_id is None or account.id == account_id:
            channel = account_channel(account, host)
            if account_id is not None or not listening(account.id):
                try:
                    done += intake.run(host, account, channel)
                except SopflowError as exc:  # one gateway down must not stop the others' intake
                    log.warning(
                        "personal WeChat intake of account %s failed: %s", account.id, exc.user_message
                    )
            notices.tell_restriction(host, account, channel)  # also when the gateway refused the run
    return done


def account_health(request: InboundRequest, host: Host) -> InboundResponse:
    """``GET accounts/{id}``: the account's health document (``health.report``)."""
    account, error = admin_account(request, host)
    if error is not None:
        return error
    return json_response(200, {"id": account.id, **report(account_channel(account, host))})

"""``GET /plugins/personal_wechat/accounts/{id}``: an account's health.

Login state, the QR login URL while logged out, the last heartbeat (and
``healthy: false`` once it is older than ``HEARTBEAT_GAP``), a pause and its
reason, and today's counts against each cap, read from the pacing row every
worker writes; no gateway call, so the page answers while the gateway is down.
"""

from __future__ import annotations

import json
from typing import Any

from sopflow_sdk import Host, InboundRequest, InboundResponse

from sopflow_personal_wechat.channel import CHANNEL, PersonalWeChatChannel
from sopflow_personal_wechat.pacing import KINDS

#: seconds without a heartbeat after which an account is unhealthy (the puppet
#: service beats about every minute; three missed beats is a dead link)
HEARTBEAT_GAP = 180.0


def json_response(status: int, body: Any) -> InboundResponse:
    return InboundResponse(
        status=status, body=json.dumps(body, ensure_ascii=False), media_type="application/json"
    )


def report(channel: PersonalWeChatChannel) -> dict[str, Any]:
    """The health document of one account (its pacing row, read fresh)."""
    pacer, policy = channel.pacer, channel.policy
    row, now = pacer.row(channel.key), pacer.clock()
    day_number = int((now - row["connected_at"]) // 86_400)
    today = policy.local(now).date().isoformat()
    counts = row["counts"] if row["day"] == today else {}
    beat = row["last_heartbeat"]
    paused = row["paused_until"] > now
    return {
        "adapter": channel.gateway.name,
        "logged_in": bool(row["logged_in"]),
        "qr_url": row["qr_url"] if not row["logged_in"] else None,
        "last_heartbeat": beat,
        "healthy": bool(row["logged_in"]) and not paused and beat is not None and now - beat <= HEARTBEAT_GAP,
        "paused_until": row["paused_until"] if paused else None,
        "paused_reason": row["paused_reason"] if paused else None,
        "restrictions": row["restrictions"],
        "deferred": row["deferred"],
        "warmup_day": day_number if day_number < policy.warmup_days else None,
        "today": {k: {"count": counts.get(k, 0), "cap": policy.cap(k, day_number)} for k in KINDS},
    }


def admin_account(request: InboundRequest, host: Host) -> tuple[Any, InboundResponse | None]:
    """The route's personal WeChat account, or the 401/404 to answer."""
    tenant_id = host.authenticate(request.headers, "admin")
    if tenant_id is None:
        return None, json_response(
            401, {"title": "Unauthorized", "detail": "send 'Authorization: Bearer <admin api key>'"}
        )
    try:
        account = host.channel_account(int(request.path_params.get("account_id", "")))
    except ValueError:
        account = None
    if account is None or account.tenant_id != tenant_id or account.channel != CHANNEL:
        return None, json_response(
            404, {"title": "Not Found", "detail": "no personal WeChat account with that id in this tenant"}
        )
    return account, None
